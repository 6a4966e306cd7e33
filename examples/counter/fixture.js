// build: optimize
// counter: the memo's demo app. Counts events and answers each with the
// count and the event echoed as received. Mirrors examples/counter/src/Main.elm
// as `elm make --optimize` compiles it: `Event` is unboxed (a single
// constructor), flags and events are Json.Decode.Value.

var Event = identity;

var init = function (flags) {
	var start = call2(withDefault, 0,
		call2(runDecoder, call2(decodeField, 'start', decodeInt), flags));
	return pair(start, cmdNone);
};

var onEvent = incomingPort('onEvent', decodeValue);
var respond = outgoingPort('respond', identity);

var update = curry2(function (msg, count) {
	var event = msg;
	var next = count + 1;
	return pair(next, respond(encodeObject(listFromArray([
		pair('count', encodeInt(next)),
		pair('event', event)
	]))));
});

var main = platformWorker({
	init: init,
	subscriptions: function (model) { return onEvent(Event); },
	update: update
});

exportElm({ 'Main': { 'init': main(decodeValue)(0) } });
