// build: optimize
// faults: counts events like counter, and throws on purpose from three
// places, the way Elm 0.19.1 really does. Mirrors examples/faults/src/Main.elm
// as `elm make --optimize` compiles it.
// - "crash-now": `modBy 0` in update, inside `send`, before any effect is
//   handed out: nothing is left mid-step, the next event is answered.
// - "crash-later": answered, then 100 ms later update throws on CrashLater
//   from the timer's callback, inside the scheduler: it stays "working" and
//   every later event is queued and never answered.
// - "crash-in-task": the command's Task.map throws while the Task manager
//   runs it, inside `send`: both the scheduler and the effects queue stay
//   busy, the same wedge.
// - "twice": two values for the port in one Cmd.batch, which arrive
//   last-first.
// - a value that is not a string: the port's decoder rejects it (hint 4)
//   before update runs.

var Event = function (a) { return { $: 0, a: a }; };

var onEvent = incomingPort('onEvent', decodeString);

var CrashLater = { $: 1 };
var Got = function (a) { return { $: 2, a: a }; };

var encode = curry2(function (count, event) {
	return encodeObject(listFromArray([
		pair('count', encodeInt(count)),
		pair('event', encodeString(event))
	]));
});

var encodePart = curry3(function (count, event, part) {
	return encodeObject(listFromArray([
		pair('count', encodeInt(count)),
		pair('event', encodeString(event)),
		pair('part', encodeInt(part))
	]));
});

installManager('Task', taskManager);

var respond = outgoingPort('respond', identity);

var update = curry2(function (msg, count) {
	switch (msg.$) {
		case 0:
			var event = msg.a;
			var next = count + 1;
			switch (event) {
				case 'crash-now':
					return pair(call2(modBy, 0, next), cmdNone);
				case 'crash-later':
					return pair(next, batch(listFromArray([
						respond(call2(encode, next, event)),
						call2(taskPerform, function (_) { return CrashLater; }, processSleep(100))
					])));
				case 'crash-in-task':
					return pair(next, call2(taskPerform, Got,
						call2(taskMap, function (_) { return call2(modBy, 0, next); }, taskSucceed(unit))));
				case 'twice':
					return pair(next, batch(listFromArray([
						respond(call3(encodePart, next, event, 1)),
						call2(bagMap, identity, respond(call3(encodePart, next, event, 2)))
					])));
				default:
					return pair(next, respond(call2(encode, next, event)));
			}
		case 1:
			return pair(call2(modBy, 0, count), cmdNone);
		default:
			return pair(msg.a, cmdNone);
	}
});

var main = platformWorker({
	init: function (flags) { return pair(0, cmdNone); },
	subscriptions: function (model) { return call2(bagMap, Event, onEvent(identity)); },
	update: update
});

exportElm({ 'Main': { 'init': main(decodeSucceed(unit))(0) } });
