// build: optimize
// tally: version 1 of an app that migrates. The counter, plus the ports a
// migration uses: null on elmboxExport is answered on elmboxExported with
// {"count": N}. Mirrors examples/tally/src/Main.elm as `elm make --optimize`
// compiles it: two constructors with numeric tags, the ports set up in the
// compiler's order.

var Event = function (a) { return { $: tag('Event', 0), a: a }; };
var Export = { $: tag('Export', 1) };

var elmboxExport = incomingPort('elmboxExport', decodeValue);

var init = function (flags) {
	var start = call2(withDefault, 0,
		call2(runDecoder, call2(decodeField, 'start', decodeInt), flags));
	return pair(start, cmdNone);
};

var onEvent = incomingPort('onEvent', decodeValue);
var elmboxExported = outgoingPort('elmboxExported', identity);
var respond = outgoingPort('respond', identity);

var update = curry2(function (msg, count) {
	if (msg.$ === tag('Event', 0)) {
		var event = msg.a;
		return pair(count + 1, respond(encodeObject(listFromArray([
			pair('count', encodeInt(count + 1)),
			pair('event', event)
		]))));
	}
	return pair(count, elmboxExported(encodeObject(listFromArray([
		pair('count', encodeInt(count))
	]))));
});

var main = platformWorker({
	init: init,
	subscriptions: function (model) {
		return batch(listFromArray([
			onEvent(Event),
			elmboxExport(function (_v1) { return Export; })
		]));
	},
	update: update
});

exportElm({ 'Main': { 'init': main(decodeValue)(0) } });
