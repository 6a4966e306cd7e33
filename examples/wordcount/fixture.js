// build: optimize
// wordcount: keeps word counts across events and answers with the top 3.
// Mirrors examples/wordcount/src/Main.elm as `elm make --optimize` compiles
// it. The Dict String Int of the model is a Map here (copied, never changed
// in place); what matters is what Elm's Dict gives: keys in ascending order.

var Event = identity;

var onEvent = incomingPort('onEvent', decodeString);

// List.sortWith byCountThenWord: by count, highest first, then by word.
var byCountThenWord = curry2(function (first, second) {
	var order = compareValues(second.b, first.b);
	return order === ORDER_EQ ? compareValues(first.a, second.a) : order;
});

function dictToList(dict) {
	return listFromArray(Array.from(dict.keys()).sort(function (x, y) {
		return compareValues(x, y) === ORDER_LT ? -1 : 1;
	}).map(function (key) { return pair(key, dict.get(key)); }));
}

var encode = function (model) {
	var top = call2(listTake, 3, call2(listSortWith, byCountThenWord, dictToList(model.counts)));
	var entry = function (wordCount) {
		return encodeObject(listFromArray([
			pair('word', encodeString(wordCount.a)),
			pair('count', encodeInt(wordCount.b))
		]));
	};
	return encodeObject(listFromArray([
		pair('top', call2(encodeList, entry, top)),
		pair('distinct', encodeInt(model.counts.size)),
		pair('total', encodeInt(model.total))
	]));
};

// Dict.update word (Just << (+) 1 << Maybe.withDefault 0), on the copy
// that update made of the model's counts for this event.
var increment = curry2(function (word, counts) {
	counts.set(word, (counts.has(word) ? counts.get(word) : 0) + 1);
	return counts;
});

// String.words: trimmed, split on runs of whitespace.
function words(text) { return listFromArray(text.trim().split(/\s+/g)); }

var respond = outgoingPort('respond', identity);

var update = curry2(function (msg, model) {
	var json = msg;
	var decoded = call2(runDecoderOnString, call2(decodeField, 'text', decodeString), json);
	if (!isOk(decoded)) {
		return pair(model, respond(encodeObject(listFromArray([
			pair('error', encodeString(errorToString(decoded.a)))
		]))));
	}
	var found = call2(listFilter, function (w) { return w !== ''; },
		call2(listMap, function (w) { return w.toLowerCase(); }, words(decoded.a)));
	var next = {
		counts: call3(listFoldl, increment, new Map(model.counts), found),
		total: model.total + listLength(found)
	};
	return pair(next, respond(encode(next)));
});

var main = platformWorker({
	init: function (flags) { return pair({ counts: new Map(), total: 0 }, cmdNone); },
	subscriptions: function (model) { return onEvent(Event); },
	update: update
});

exportElm({ 'Main': { 'init': main(decodeSucceed(unit))(0) } });
