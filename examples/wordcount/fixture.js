// wordcount: keeps word counts across events and answers with the top 3.
// Mirrors examples/wordcount/src/Main.elm (an --optimize build).

var respond = outgoingPort('respond');
var onEvent = incomingPort('onEvent', decodeString);

// Json.Decode.decodeString (field "text" string)
function decodeEvent(text) {
	var value;
	try {
		value = JSON.parse(text);
	} catch (e) {
		return { ok: false, error: { path: [], message: 'This is not valid JSON! ' + e.message, value: text } };
	}
	if (typeof value !== 'object' || value === null || !('text' in value)) {
		return { ok: false, error: { path: [], expecting: 'an OBJECT with a field named `text`', value: value } };
	}
	return decodeString(value.text).ok
		? { ok: true, value: value.text }
		: { ok: false, error: { path: ['text'], expecting: 'a STRING', value: value.text } };
}

// String.words, String.toLower, dropping the empty word of a blank text.
function words(text) {
	return text.trim().split(/\s+/g).map(function (w) { return w.toLowerCase(); })
		.filter(function (w) { return w !== ''; });
}

function compareStrings(a, b) { return a < b ? -1 : a > b ? 1 : 0; }

exportElm({ Main: worker({
	ports: { onEvent: onEvent, respond: respond },
	decodeFlags: function () { return { ok: true, value: null }; },
	init: function () { return { model: { counts: {}, distinct: 0, total: 0 }, cmd: none }; },
	update: function (text, model) {
		var decoded = decodeEvent(text);
		if (!decoded.ok) {
			return { model: model, cmd: respond.cmd({ error: errorToString(decoded.error) }) };
		}
		var counts = Object.assign({}, model.counts);
		var distinct = model.distinct, total = model.total;
		words(decoded.value).forEach(function (w) {
			if (!Object.prototype.hasOwnProperty.call(counts, w)) { counts[w] = 0; distinct++; }
			counts[w]++;
			total++;
		});
		var top = Object.keys(counts)
			.map(function (w) { return { word: w, count: counts[w] }; })
			.sort(function (a, b) { return b.count - a.count || compareStrings(a.word, b.word); })
			.slice(0, 3);
		return {
			model: { counts: counts, distinct: distinct, total: total },
			cmd: respond.cmd({ top: top, distinct: distinct, total: total })
		};
	},
	subscriptions: function () { return onEvent.sub(function (text) { return text; }); }
}) });
