// build: optimize
// tally2: version 2 of tally, with another model ({count, last}). Its init
// takes version 1's exported model from {"migrated": ..., "flags": ...};
// it exports its own as {"count", "last"}. Mirrors
// examples/tally2/src/Main.elm as `elm make --optimize` compiles it.

var Event = function (a) { return { $: tag('Event', 0), a: a }; };
var Export = { $: tag('Export', 1) };

var elmboxExport = incomingPort('elmboxExport', decodeValue);

var init = function (flags) {
	// Json.Decode.at ["migrated", field] decoder, with a fallback.
	var migrated = curry3(function (field, decoder, fallback) {
		return call2(withDefault, fallback, call2(runDecoder,
			call2(decodeField, 'migrated', call2(decodeField, field, decoder)), flags));
	});
	return pair({
		count: call3(migrated, 'count', decodeInt, 0),
		last: call3(migrated, 'last', decodeString, '')
	}, cmdNone);
};

var onEvent = incomingPort('onEvent', decodeString);
var elmboxExported = outgoingPort('elmboxExported', identity);
var respond = outgoingPort('respond', identity);

var update = curry2(function (msg, model) {
	if (msg.$ === tag('Event', 0)) {
		var event = msg.a;
		return pair({ count: model.count + 1, last: event }, respond(encodeObject(listFromArray([
			pair('count', encodeInt(model.count + 1)),
			pair('previous', encodeString(model.last)),
			pair('version', encodeInt(2))
		]))));
	}
	return pair(model, elmboxExported(encodeObject(listFromArray([
		pair('count', encodeInt(model.count)),
		pair('last', encodeString(model.last))
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
