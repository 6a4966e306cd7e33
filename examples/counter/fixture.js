// counter: the memo's demo app. Counts events and answers each with the
// count and the event echoed as received. Mirrors examples/counter/src/Main.elm
// (an --optimize build).

var respond = outgoingPort('respond');
var onEvent = incomingPort('onEvent', decodeAnything);

function isInt(value) { return typeof value === 'number' && isFinite(value) && Math.floor(value) === value; }

exportElm({ Main: worker({
	ports: { onEvent: onEvent, respond: respond },
	// Flags are a Json.Decode.Value: anything is accepted.
	decodeFlags: decodeAnything,
	init: function (flags) {
		var start = flags !== null && typeof flags === 'object' && isInt(flags.start) ? flags.start : 0;
		return { model: start, cmd: none };
	},
	update: function (event, count) {
		var next = count + 1;
		return { model: next, cmd: respond.cmd({ count: next, event: event }) };
	},
	subscriptions: function (count) { return onEvent.sub(function (event) { return event; }); }
}) });
