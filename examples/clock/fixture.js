// build: optimize
// clock: a backend on the wall clock in HTTP mode (Time.now, Process.sleep,
// Time.every). Mirrors examples/clock/src/Main.elm as `elm make --optimize`
// compiles it: constructors with numeric tags, flags as Json.Decode.Value,
// record updates copying the record as `_Utils_update` does.

function updateRecord(old, fields) {
	var copy = {};
	for (var key in old) { copy[key] = old[key]; }
	for (var key in fields) { copy[key] = fields[key]; }
	return copy;
}

var Request = function (a) { return { $: tag('Request', 0), a: a }; };
var Now = curry2(function (a, b) { return { $: tag('Now', 1), a: a, b: b }; });
var Slept = curry2(function (a, b) { return { $: tag('Slept', 2), a: a, b: b }; });
var Reminded = function (a) { return { $: tag('Reminded', 3), a: a }; };
var Tick = function (a) { return { $: tag('Tick', 4), a: a }; };

installManager('Time', timeManager);

var onEvent = incomingPort('onEvent', decodeValue);

installManager('Task', taskManager);

var respond = outgoingPort('respond', identity);

var init = function (flags) {
	var field = curry2(function (name, fallback) {
		return call2(withDefault, fallback, call2(runDecoder, call2(decodeField, name, decodeInt), flags));
	});
	return pair({
		lastTick: 0,
		reminded: 0,
		remindedAt: 0,
		sleep: call2(field, 'sleep', 300),
		tick: call2(field, 'tick', 0),
		ticks: 0
	}, cmdNone);
};

var subscriptions = function (model) {
	return model.tick > 0
		? batch(listFromArray([onEvent(Request), call2(timeEvery, model.tick, Tick)]))
		: onEvent(Request);
};

var answer = curry3(function (id, status, fields) {
	return respond(encodeObject(listFromArray([
		pair('id', encodeString(id)),
		pair('status', encodeInt(status)),
		pair('headers', encodeObject(listFromArray([pair('content-type', encodeString('application/json'))]))),
		pair('body', encodeString(call2(encodeJson, 0, encodeObject(fields))))
	])));
});

var sleepThenNow = function (ms) {
	return call2(taskAndThen, function (_v0) { return timeNow; }, processSleep(ms));
};

var update = curry2(function (msg, model) {
	switch (msg.$) {
		case tag('Request', 0):
			var value = msg.a;
			var id = call2(withDefault, '', call2(runDecoder, call2(decodeField, 'id', decodeString), value));
			var path = call2(withDefault, '', call2(runDecoder, call2(decodeField, 'path', decodeString), value));
			switch (path) {
				case '/now':
					return pair(model, call2(taskPerform, Now(id), timeNow));
				case '/sleep':
					return pair(model, call2(taskPerform, Slept(id), sleepThenNow(model.sleep)));
				case '/remind':
					return pair(model, batch(listFromArray([
						call3(answer, id, 202, listFromArray([pair('due_in', encodeInt(model.sleep))])),
						call2(taskPerform, Reminded, sleepThenNow(model.sleep))
					])));
				case '/reminded':
					return pair(model, call3(answer, id, 200, listFromArray([
						pair('reminded', encodeInt(model.reminded)),
						pair('at', encodeInt(model.remindedAt))
					])));
				case '/ticks':
					return pair(model, call3(answer, id, 200, listFromArray([
						pair('ticks', encodeInt(model.ticks)),
						pair('last', encodeInt(model.lastTick))
					])));
				default:
					return pair(model, call3(answer, id, 404, listFromArray([
						pair('error', encodeString('no ' + path))
					])));
			}
		case tag('Now', 1):
			return pair(model, call3(answer, msg.a, 200, listFromArray([
				pair('now', encodeInt(posixToMillis(msg.b)))
			])));
		case tag('Slept', 2):
			return pair(model, call3(answer, msg.a, 200, listFromArray([
				pair('slept', encodeInt(model.sleep)),
				pair('now', encodeInt(posixToMillis(msg.b)))
			])));
		case tag('Reminded', 3):
			return pair(updateRecord(model, {
				reminded: model.reminded + 1,
				remindedAt: posixToMillis(msg.a)
			}), cmdNone);
		default:
			return pair(updateRecord(model, {
				lastTick: posixToMillis(msg.a),
				ticks: model.ticks + 1
			}), cmdNone);
	}
});

var main = platformWorker({ init: init, subscriptions: subscriptions, update: update });

exportElm({ 'Main': { 'init': main(decodeValue)(0) } });
