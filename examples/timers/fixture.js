// build: dev
// timers: Process.sleep, Time.every and Debug.log. Mirrors
// examples/timers/src/Main.elm as `elm make` compiles it without --optimize
// (Debug.log forbids it): a DEV build, whose values carry their
// constructors' names and whose Json values are boxed.

var Event = function (a) { return { $: 'Event', a: a }; };
var Tick = function (a) { return { $: 'Tick', a: a }; };

installManager('Time', timeManager);

var onEvent = incomingPort('onEvent', decodeString);

var Delayed = function (a) { return { $: 'Delayed', a: a }; };

installManager('Task', taskManager);

var respond = outgoingPort('respond', identity);

var update = curry2(function (msg, model) {
	switch (msg.$) {
		case 'Event':
			var text = msg.a;
			var _logged = call2(debugLog, 'event', text);
			return pair(model, batch(listFromArray([
				respond(encodeObject(listFromArray([pair('received', encodeString(text))]))),
				call2(taskPerform, function (_) { return Delayed(text); }, processSleep(1000))
			])));
		case 'Delayed':
			return pair(model, respond(encodeObject(listFromArray([pair('delayed', encodeString(msg.a))]))));
		default:
			var ticks = model.ticks + 1;
			return pair({ ticks: ticks }, respond(encodeObject(listFromArray([
				pair('tick', encodeInt(ticks)),
				pair('posix', encodeInt(posixToMillis(msg.a)))
			]))));
	}
});

var main = platformWorker({
	init: function (flags) { return pair({ ticks: 0 }, cmdNone); },
	subscriptions: function (model) {
		return batch(listFromArray([onEvent(Event), call2(timeEvery, 500, Tick)]));
	},
	update: update
});

exportElm({ 'Main': { 'init': main(decodeSucceed(unit))(0) } });
