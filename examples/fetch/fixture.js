// build: optimize
// fetch: a backend in HTTP mode that calls other services with elm/http
// 2.0.0 (Http.request and Http.task, string, bytes, json and whatever
// bodies, timeouts, Http.track and Http.cancel). Mirrors
// examples/fetch/src/Main.elm as `elm make --optimize` compiles it, in the
// order the compiler emits its definitions: the managers are onEvent,
// Http, respond, then Task. Record updates copy the record as
// `_Utils_update` does.

function updateRecord(old, fields) {
	var copy = {};
	for (var key in old) { copy[key] = old[key]; }
	for (var key in fields) { copy[key] = fields[key]; }
	return copy;
}

var Model = curry5(function (fetched, last, progress, tracking, halves) {
	return { fetched: fetched, halves: halves, last: last, progress: progress, tracking: tracking };
});

var Progressed = curry2(function (a, b) { return { $: tag('Progressed', 2), a: a, b: b }; });
var Request = function (a) { return { $: tag('Request', 0), a: a }; };

var onEvent = incomingPort('onEvent', decodeValue);

installManager('Http', httpManager);

var subscriptions = function (model) {
	return batch(Cons(onEvent(Request), call2(listMap, function (name) {
		return call2(httpTrack, name, Progressed(name));
	}, model.tracking)));
};

var Client = function (a) { return { $: tag('Client', 0), a: a }; };
var Half = curry2(function (a, b) { return { $: tag('Half', 1), a: a, b: b }; });

var respond = outgoingPort('respond', identity);

var answer = curry3(function (id, status, body) {
	return respond(encodeObject(listFromArray([
		pair('id', encodeString(id)),
		pair('status', encodeInt(status)),
		pair('headers', encodeObject(listFromArray([pair('content-type', encodeString('application/json'))]))),
		pair('body', encodeString(call2(encodeJson, 0, body)))
	])));
});

var badRequest = curry2(function (id, error) {
	return call3(answer, id, 400, encodeObject(listFromArray([
		pair('error', encodeString(errorToString(error)))
	])));
});

var encodeProgress = function (progress) {
	if (progress.$ === tag('Sending', 0)) {
		return encodeObject(listFromArray([
			pair('sending', encodeInt(progress.a.sent)),
			pair('size', encodeInt(progress.a.size))
		]));
	}
	return encodeObject(listFromArray([
		pair('receiving', encodeInt(progress.a.received)),
		pair('size', call2(maybeWithDefault, encodeNull, call2(maybeMap, encodeInt, progress.a.size)))
	]));
};

var ExpectString = tag('ExpectString', 0);
var ExpectBytes = tag('ExpectBytes', 1);
var ExpectJson = tag('ExpectJson', 2);
var ExpectWhatever = tag('ExpectWhatever', 3);

var Fetch = curry8(function (method, url, headers, body, timeout, expect, task, tracker) {
	return { body: body, expect: expect, headers: headers, method: method, task: task, timeout: timeout, tracker: tracker, url: url };
});

// A field that may be left out, but must decode when it is there.
var optional = curry3(function (name, decoder, fallback) {
	return call2(decodeAndThen, function (found) {
		return isJust(found) ? call2(decodeField, name, decoder) : decodeSucceed(fallback);
	}, decodeMaybe(call2(decodeField, name, decodeValue)));
});

// "bytes" (a list of byte values) wins over "body" (a text); neither is an
// empty body.
var bodyDecoder = call3(decodeMap2, curry2(function (text, bytes) {
	if (isJust(bytes)) {
		return call2(httpBytesBody, 'application/octet-stream',
			bytesEncode(encodeSequence(call2(listMap, encodeUnsignedInt8, bytes.a))));
	}
	if (isJust(text)) {
		return call2(httpStringBody, 'text/plain', text.a);
	}
	return httpEmptyBody;
}),
	call3(optional, 'body', call2(decodeMap, Just, decodeString), Nothing),
	call3(optional, 'bytes', call2(decodeMap, Just, decodeList(decodeInt)), Nothing));

var expectingDecoder = call2(decodeAndThen, function (name) {
	switch (name) {
		case 'string':
			return decodeSucceed(ExpectString);
		case 'bytes':
			return decodeSucceed(ExpectBytes);
		case 'json':
			return decodeSucceed(ExpectJson);
		case 'whatever':
			return decodeSucceed(ExpectWhatever);
		default:
			return decodeFail('expect must be string, bytes, json or whatever, not ' + name);
	}
}, decodeString);

var headerDecoder = call3(decodeMap2, httpHeader,
	call2(decodeIndex, 0, decodeString),
	call2(decodeIndex, 1, decodeString));

var fetchDecoder = call9(decodeMap8, Fetch,
	call3(optional, 'method', decodeString, 'GET'),
	call2(decodeField, 'url', decodeString),
	call3(optional, 'headers', decodeList(headerDecoder), Nil),
	bodyDecoder,
	call3(optional, 'timeout', call2(decodeMap, Just, decodeFloat), Nothing),
	call3(optional, 'expect', expectingDecoder, ExpectString),
	call3(optional, 'task', decodeBool, false),
	call3(optional, 'tracker', call2(decodeMap, Just, decodeString), Nothing));

var fetch2Decoder = call3(decodeMap2, curry2(pair),
	call2(decodeField, 'first', fetchDecoder),
	call2(decodeField, 'second', fetchDecoder));

var Fetched = curry3(function (a, b, c) { return { $: tag('Fetched', 1), a: a, b: b, c: c }; });

installManager('Task', taskManager);

// Bytes.Decode.loop reading `count` bytes, one unsignedInt8 at a time.
var byteValues = function (count) {
	return call2(bytesLoop, pair(count, Nil), function (state) {
		var left = state.a, values = state.b;
		return left <= 0
			? bytesSucceed(Done(listReverse(values)))
			: call2(bytesMap, function (value) { return Loop(pair(left - 1, Cons(value, values))); }, decodeUnsignedInt8);
	});
};

// Bytes: how many, and the first eight.
var bytesFields = function (bytes) {
	return listFromArray([
		pair('bytes', encodeInt(bytesWidth(bytes))),
		pair('first', call2(encodeList, encodeInt, call2(maybeWithDefault, Nil,
			call2(bytesDecode, byteValues(call2(min, 8, bytesWidth(bytes))), bytes))))
	]);
};

var readJson = function (text) {
	return call2(resultMapError, errorToString, call2(resultMap, function (json) {
		return listFromArray([pair('json', json)]);
	}, call2(runDecoderOnString, decodeValue, text)));
};

var describe = function (metadata) {
	return listFromArray([
		pair('status', encodeInt(metadata.statusCode)),
		pair('statusText', encodeString(metadata.statusText)),
		pair('url', encodeString(metadata.url)),
		pair('headers', call3(encodeDict, identity, encodeString, metadata.headers))
	]);
};

// Every response, good or bad, with its metadata: `keep` describes the body
// of a bad status, `read` the body of a good one (and may reject it).
var resolve = curry3(function (keep, read, response) {
	switch (response.$) {
		case tag('BadUrl_', 0):
			return Err(listFromArray([pair('error', encodeString('BadUrl ' + response.a))]));
		case tag('Timeout_', 1):
			return Err(listFromArray([pair('error', encodeString('Timeout'))]));
		case tag('NetworkError_', 2):
			return Err(listFromArray([pair('error', encodeString('NetworkError'))]));
		case tag('BadStatus_', 3):
			return Err(Cons(pair('error', encodeString('BadStatus')),
				call2(append, describe(response.a), keep(response.b))));
		default:
			var body = read(response.b);
			if (isOk(body)) {
				return Ok(call2(append, describe(response.a), body.a));
			}
			return Err(Cons(pair('error', encodeString('BadBody')),
				Cons(pair('problem', encodeString(body.a)), describe(response.a))));
	}
});

var textFields = function (text) { return listFromArray([pair('body', encodeString(text))]); };

var nothingToSay = function (_v1) { return Nil; };
var fineAsItIs = function (_v2) { return Ok(Nil); };

var expectation = curry2(function (toMsg, expecting) {
	switch (expecting) {
		case ExpectString:
			return call2(expectStringResponse, toMsg, call2(resolve, textFields, function (text) { return Ok(textFields(text)); }));
		case ExpectJson:
			return call2(expectStringResponse, toMsg, call2(resolve, textFields, readJson));
		case ExpectBytes:
			return call2(expectBytesResponse, toMsg, call2(resolve, bytesFields, function (bytes) { return Ok(bytesFields(bytes)); }));
		default:
			return call2(expectBytesResponse, toMsg, call2(resolve, nothingToSay, fineAsItIs));
	}
});

var resolver = function (expecting) {
	switch (expecting) {
		case ExpectString:
			return stringResolver(call2(resolve, textFields, function (text) { return Ok(textFields(text)); }));
		case ExpectJson:
			return stringResolver(call2(resolve, textFields, readJson));
		case ExpectBytes:
			return bytesResolver(call2(resolve, bytesFields, function (bytes) { return Ok(bytesFields(bytes)); }));
		default:
			return bytesResolver(call2(resolve, nothingToSay, fineAsItIs));
	}
};

// Start a fetch, with Http.request, or with Http.task when asked.
var start = curry2(function (waiting, spec) {
	if (spec.task) {
		return call2(taskAttempt, call2(Fetched, waiting, spec), httpTask({
			body: spec.body,
			headers: spec.headers,
			method: spec.method,
			resolver: resolver(spec.expect),
			timeout: spec.timeout,
			url: spec.url
		}));
	}
	return httpRequest({
		body: spec.body,
		expect: call2(expectation, call2(Fetched, waiting, spec), spec.expect),
		headers: spec.headers,
		method: spec.method,
		timeout: spec.timeout,
		tracker: spec.tracker,
		url: spec.url
	});
});

// Subscribe to a fetch's progress while it is in flight.
var watch = curry2(function (spec, tracking) {
	if (!isJust(spec.tracker)) { return tracking; }
	var name = spec.tracker.a;
	return call2(listMember, name, tracking) ? tracking : call2(append, tracking, listFromArray([name]));
});

var update = curry2(function (msg, model) {
	switch (msg.$) {
		case tag('Request', 0):
			var value = msg.a;
			var field = function (name) {
				return call2(withDefault, '', call2(runDecoder, call2(decodeField, name, decodeString), value));
			};
			var id = field('id');
			var method = field('method'), path = field('path');
			if (method === 'POST' && path === '/fetch') {
				var spec = call2(runDecoderOnString, fetchDecoder, field('body'));
				if (!isOk(spec)) { return pair(model, call2(badRequest, id, spec.a)); }
				return pair(updateRecord(model, { tracking: call2(watch, spec.a, model.tracking) }),
					call2(start, Client(id), spec.a));
			}
			if (method === 'POST' && path === '/fetch2') {
				var specs = call2(runDecoderOnString, fetch2Decoder, field('body'));
				if (!isOk(specs)) { return pair(model, call2(badRequest, id, specs.a)); }
				var first = specs.a.a, second = specs.a.b;
				return pair(updateRecord(model, { tracking: call2(watch, second, call2(watch, first, model.tracking)) }),
					batch(listFromArray([
						call2(start, call2(Half, id, 'first'), first),
						call2(start, call2(Half, id, 'second'), second)
					])));
			}
			if (method === 'POST' && path === '/cancel') {
				var cancelled = call2(runDecoderOnString, call2(decodeField, 'tracker', decodeString), field('body'));
				if (!isOk(cancelled)) { return pair(model, call2(badRequest, id, cancelled.a)); }
				var name = cancelled.a;
				return pair(updateRecord(model, { tracking: call2(listFilter, function (t) { return t !== name; }, model.tracking) }),
					batch(listFromArray([
						httpCancel(name),
						call3(answer, id, 202, encodeObject(listFromArray([pair('cancelled', encodeString(name))])))
					])));
			}
			if (method === 'GET' && path === '/count') {
				return pair(model, call3(answer, id, 200, encodeObject(listFromArray([
					pair('fetched', encodeInt(model.fetched)),
					pair('last', model.last)
				]))));
			}
			if (method === 'GET' && path === '/progress') {
				return pair(model, call3(answer, id, 200,
					call3(encodeDict, identity, encodeList(encodeProgress), model.progress)));
			}
			return pair(model, call3(answer, id, 404, encodeObject(listFromArray([
				pair('error', encodeString('no ' + path))
			]))));
		case tag('Fetched', 1):
			var waiting = msg.a, fetched = msg.b, result = msg.c;
			var outcome = encodeObject(Cons(pair('ok', encodeBool(isOk(result))), result.a));
			var done = updateRecord(model, {
				fetched: model.fetched + 1,
				last: outcome,
				tracking: call2(listFilter, function (t) {
					return !(isJust(fetched.tracker) && fetched.tracker.a === t);
				}, model.tracking)
			});
			if (waiting.$ === tag('Client', 0)) {
				return pair(done, call3(answer, waiting.a, 200, outcome));
			}
			var waitingId = waiting.a, part = waiting.b;
			var earlier = call2(dictGet, waitingId, model.halves);
			if (!isJust(earlier)) {
				return pair(updateRecord(done, {
					halves: call3(dictInsert, waitingId, listFromArray([pair(part, outcome)]), model.halves)
				}), cmdNone);
			}
			var both = call2(append, earlier.a, listFromArray([pair(part, outcome)]));
			return pair(updateRecord(done, { halves: call2(dictRemove, waitingId, model.halves) }),
				call3(answer, waitingId, 200, encodeObject(call2(append,
					call2(listSortBy, tupleFirst, both),
					listFromArray([pair('completed', call2(encodeList, function (p) { return encodeString(tupleFirst(p)); }, both))])))));
		default:
			var tracker = msg.a, progress = msg.b;
			return pair(updateRecord(model, {
				progress: call3(dictUpdate, tracker, function (seen) {
					return Just(call2(append, call2(maybeWithDefault, Nil, seen), listFromArray([progress])));
				}, model.progress)
			}), cmdNone);
	}
});

var main = platformWorker({
	init: function (_v0) { return pair(call5(Model, 0, encodeNull, dictEmpty, Nil, dictEmpty), cmdNone); },
	subscriptions: subscriptions,
	update: update
});

exportElm({ 'Main': { 'init': main(decodeSucceed(unit))(0) } });
