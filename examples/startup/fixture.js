// build: optimize
// startup: what an app sends while it starts, and the order of what one
// event sets off. Mirrors examples/startup/src/Main.elm as `elm make
// --optimize` compiles it: the Task manager is defined before the ports,
// and `Msg`'s constructors are tags 0, 1 and 2.

var Event = function (a) { return { $: 0, a: a }; };
var Done = function (a) { return { $: 1, a: a }; };
var Slept = function (a) { return { $: 2, a: a }; };

installManager('Task', taskManager);

var onEvent = incomingPort('onEvent', decodeString);
var respond = outgoingPort('respond', identity);

function say(text) { return respond(encodeString(text)); }

function follow(name, first) {
	return batch(listFromArray([
		first,
		call2(taskPerform, function (_) { return Done(name); }, taskSucceed(unit)),
		call2(taskPerform, function (_) { return Slept(name); }, processSleep(0))
	]));
}

var update = curry2(function (msg, count) {
	switch (msg.$) {
		case 0:
			return pair(count + 1, batch(listFromArray([
				follow(msg.a, say('event ' + msg.a)),
				say('count ' + (count + 1))
			])));
		case 1:
			return pair(count, say('done ' + msg.a));
		default:
			return pair(count, say('slept ' + msg.a));
	}
});

var main = platformWorker({
	init: function (flags) { return pair(0, follow('init', say('started'))); },
	subscriptions: function (model) { return onEvent(Event); },
	update: update
});

exportElm({ 'Main': { 'init': main(decodeSucceed(unit))(0) } });
