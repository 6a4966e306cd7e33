// XMLHttpRequest, Blob, File and FormData for apps in elmbox's guest: the
// part of them elm/http 2.0.0's kernel uses, after the XMLHttpRequest
// standard, with the network replaced by the host. `send` hands the request
// to the host (native.send) and returns; the host hands the outcome back
// later as an input of its own, which calls `deliver`, and only then do the
// `progress`, `load`, `error` or `timeout` events fire. Every request is
// asynchronous, whatever `open` is told.
//
// Evaluated once per app, before the app, as a function of the host's
// native calls; it returns `deliver`. Nothing here reads a clock or draws a
// random number: what an app sends depends only on what it did, so a replay
// of its log sends the same requests.
(function (native) {
	'use strict';

	// ---- Bytes -------------------------------------------------------------
	// A body or a Blob part as a Uint8Array of its own bytes.

	function bytesOf(part) {
		if (part instanceof Blob) { return part._bytes; }
		if (part instanceof ArrayBuffer) { return new Uint8Array(part.slice(0)); }
		if (ArrayBuffer.isView(part)) {
			return new Uint8Array(part.buffer.slice(part.byteOffset, part.byteOffset + part.byteLength));
		}
		return new Uint8Array(native.utf8(String(part)));
	}

	function concat(chunks) {
		var size = 0, i;
		for (i = 0; i < chunks.length; i++) { size += chunks[i].length; }
		var all = new Uint8Array(size), at = 0;
		for (i = 0; i < chunks.length; i++) { all.set(chunks[i], at); at += chunks[i].length; }
		return all;
	}

	// ---- Blob and File -----------------------------------------------------

	function Blob(parts, options) {
		if (!(this instanceof Blob)) { throw new TypeError("Failed to construct 'Blob': Please use the 'new' operator"); }
		var chunks = [];
		if (parts !== undefined && parts !== null) {
			if (typeof parts !== 'object' || typeof parts.length !== 'number') {
				throw new TypeError("Failed to construct 'Blob': The provided value cannot be converted to a sequence.");
			}
			for (var i = 0; i < parts.length; i++) { chunks.push(bytesOf(parts[i])); }
		}
		var type = options && options.type !== undefined ? String(options.type) : '';
		Object.defineProperty(this, '_bytes', { value: concat(chunks) });
		Object.defineProperty(this, 'type', { value: /^[\x20-\x7e]*$/.test(type) ? type.toLowerCase() : '', enumerable: true });
	}
	Object.defineProperty(Blob.prototype, 'size', { get: function () { return this._bytes.length; } });
	Blob.prototype.arrayBuffer = function () {
		var bytes = this._bytes;
		return Promise.resolve(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.length));
	};
	Blob.prototype.text = function () { return Promise.resolve(native.fromUtf8(this._bytes)); };
	Blob.prototype.slice = function (start, end, type) {
		var size = this._bytes.length;
		function clamp(n, fallback) {
			if (n === undefined) { return fallback; }
			n = Math.trunc(Number(n)) || 0;
			return n < 0 ? Math.max(size + n, 0) : Math.min(n, size);
		}
		var from = clamp(start, 0), to = clamp(end, size);
		return new Blob([this._bytes.subarray(from, Math.max(from, to))], { type: type === undefined ? '' : type });
	};
	Object.defineProperty(Blob.prototype, Symbol.toStringTag, { value: 'Blob' });

	function File(parts, name, options) {
		if (!(this instanceof File)) { throw new TypeError("Failed to construct 'File': Please use the 'new' operator"); }
		if (arguments.length < 2) { throw new TypeError("Failed to construct 'File': 2 arguments required"); }
		Blob.call(this, parts, options);
		Object.defineProperty(this, 'name', { value: String(name), enumerable: true });
		// No clock here: a file made by the app was modified at instant 0.
		var modified = options && options.lastModified !== undefined ? Number(options.lastModified) : 0;
		Object.defineProperty(this, 'lastModified', { value: modified, enumerable: true });
	}
	File.prototype = Object.create(Blob.prototype, { constructor: { value: File } });
	Object.defineProperty(File.prototype, Symbol.toStringTag, { value: 'File' });

	// ---- FormData ------------------------------------------------------------
	// Entries in order; sent as multipart/form-data with a boundary that
	// depends only on the entries (no randomness: a replay sends the same).

	function FormData() {
		if (!(this instanceof FormData)) { throw new TypeError("Failed to construct 'FormData': Please use the 'new' operator"); }
		Object.defineProperty(this, '_entries', { value: [] });
	}
	function formEntry(name, value, filename) {
		if (value instanceof Blob) {
			if (!(value instanceof File) || filename !== undefined) {
				value = new File([value], filename !== undefined ? filename : value instanceof File ? value.name : 'blob', { type: value.type });
			}
			return [String(name), value];
		}
		return [String(name), String(value)];
	}
	FormData.prototype.append = function (name, value, filename) { this._entries.push(formEntry(name, value, filename)); };
	FormData.prototype.set = function (name, value, filename) {
		var entry = formEntry(name, value, filename), entries = this._entries, at = -1;
		for (var i = entries.length - 1; i >= 0; i--) {
			if (entries[i][0] === entry[0]) { if (at >= 0) { entries.splice(at, 1); } at = i; }
		}
		if (at >= 0) { entries[at] = entry; } else { entries.push(entry); }
	};
	FormData.prototype.get = function (name) {
		for (var i = 0; i < this._entries.length; i++) { if (this._entries[i][0] === String(name)) { return this._entries[i][1]; } }
		return null;
	};
	FormData.prototype.getAll = function (name) {
		return this._entries.filter(function (e) { return e[0] === String(name); }).map(function (e) { return e[1]; });
	};
	FormData.prototype.has = function (name) { return this.get(name) !== null; };
	FormData.prototype['delete'] = function (name) {
		var keep = this._entries.filter(function (e) { return e[0] !== String(name); });
		this._entries.length = 0;
		Array.prototype.push.apply(this._entries, keep);
	};
	FormData.prototype.forEach = function (f, self) {
		var form = this;
		this._entries.slice().forEach(function (e) { f.call(self, e[1], e[0], form); });
	};
	FormData.prototype.entries = function () { return this._entries.map(function (e) { return [e[0], e[1]]; })[Symbol.iterator](); };
	FormData.prototype[Symbol.iterator] = FormData.prototype.entries;
	Object.defineProperty(FormData.prototype, Symbol.toStringTag, { value: 'FormData' });

	// HTML's rule for names in a multipart header: quotes and line breaks escaped.
	function escapeFormName(name) { return name.replace(/\r\n|\r|\n/g, '\r\n').replace(/"/g, '%22').replace(/\r/g, '%0D').replace(/\n/g, '%0A'); }

	function multipart(form) {
		var parts = form._entries.map(function (entry) {
			var name = escapeFormName(entry[0]), value = entry[1];
			if (value instanceof Blob) {
				var head = 'Content-Disposition: form-data; name="' + name + '"; filename="' + escapeFormName(value.name) + '"\r\n'
					+ 'Content-Type: ' + (value.type || 'application/octet-stream') + '\r\n\r\n';
				return [bytesOf(head), value._bytes];
			}
			var text = value.replace(/\r\n|\r|\n/g, '\r\n');
			return [bytesOf('Content-Disposition: form-data; name="' + name + '"\r\n\r\n'), bytesOf(text)];
		});
		// A boundary that occurs in no part: counted up from a fixed name.
		var boundary, n = 0;
		do {
			boundary = '----elmboxFormBoundary' + (n++).toString(36);
		} while (parts.some(function (p) { return native.contains(p[0], boundary) || native.contains(p[1], boundary); }));
		var chunks = [];
		parts.forEach(function (p) { chunks.push(bytesOf('--' + boundary + '\r\n'), p[0], p[1], bytesOf('\r\n')); });
		chunks.push(bytesOf('--' + boundary + '--\r\n'));
		return { bytes: concat(chunks), type: 'multipart/form-data; boundary=' + boundary };
	}

	// ---- Events ----------------------------------------------------------------

	function EventTarget() {}
	EventTarget.prototype.addEventListener = function (type, listener) {
		if (typeof listener !== 'function' && !(listener && typeof listener.handleEvent === 'function')) { return; }
		var all = this._listeners || Object.defineProperty(this, '_listeners', { value: {} })._listeners;
		var list = all[type] || (all[type] = []);
		if (list.indexOf(listener) < 0) { list.push(listener); }
	};
	EventTarget.prototype.removeEventListener = function (type, listener) {
		var list = this._listeners && this._listeners[type];
		var at = list ? list.indexOf(listener) : -1;
		if (at >= 0) { this._listeners[type] = list.slice(0, at).concat(list.slice(at + 1)); }
	};
	EventTarget.prototype.dispatchEvent = function (event) {
		event.target = event.currentTarget = this;
		var handler = this['on' + event.type];
		if (typeof handler === 'function') { handler.call(this, event); }
		var list = (this._listeners && this._listeners[event.type] || []).slice();
		for (var i = 0; i < list.length; i++) {
			if (typeof list[i] === 'function') { list[i].call(this, event); } else { list[i].handleEvent(event); }
		}
		return true;
	};

	function progressEvent(type, loaded, total, computable) {
		return { type: type, loaded: loaded, total: total, lengthComputable: computable, bubbles: false, cancelable: false };
	}

	// ---- XMLHttpRequest -----------------------------------------------------------

	var UNSENT = 0, OPENED = 1, HEADERS_RECEIVED = 2, LOADING = 3, DONE = 4;
	var waiting = new Map(); // request id -> the XMLHttpRequest waiting for it

	// Request headers an app may not set (the Fetch standard's list): the
	// host owns them. Ignored, as a browser ignores them.
	var FORBIDDEN_HEADER = /^(accept-charset|accept-encoding|access-control-request-headers|access-control-request-method|connection|content-length|cookie|cookie2|date|dnt|expect|host|keep-alive|origin|referer|set-cookie|te|trailer|transfer-encoding|upgrade|via|proxy-.*|sec-.*)$/;
	var TOKEN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;
	var NORMALISED_METHOD = /^(delete|get|head|options|post|put)$/i;
	var FORBIDDEN_METHOD = /^(connect|trace|track)$/i;
	var RESPONSE_TYPES = ['', 'arraybuffer', 'blob', 'json', 'text'];

	function domError(name, message) {
		var e = new Error(message);
		e.name = name;
		return e;
	}

	function XMLHttpRequest() {
		if (!(this instanceof XMLHttpRequest)) { throw new TypeError("Failed to construct 'XMLHttpRequest': Please use the 'new' operator"); }
		Object.defineProperty(this, '_', { value: {
			state: UNSENT, method: '', url: '', headers: [], sent: false, id: 0, sentBytes: 0,
			status: 0, statusText: '', responseURL: '', responseHeaders: [], body: null, response: null,
			responseType: '', timeout: 0, withCredentials: false,
			text: function () { return ''; }
		} });
		Object.defineProperty(this, 'upload', { value: new XMLHttpRequestUpload(), enumerable: true });
	}
	function XMLHttpRequestUpload() {}
	XMLHttpRequestUpload.prototype = Object.create(EventTarget.prototype, { constructor: { value: XMLHttpRequestUpload } });
	XMLHttpRequest.prototype = Object.create(EventTarget.prototype, { constructor: { value: XMLHttpRequest } });
	[['UNSENT', UNSENT], ['OPENED', OPENED], ['HEADERS_RECEIVED', HEADERS_RECEIVED], ['LOADING', LOADING], ['DONE', DONE]].forEach(function (c) {
		Object.defineProperty(XMLHttpRequest, c[0], { value: c[1] });
		Object.defineProperty(XMLHttpRequest.prototype, c[0], { value: c[1] });
	});

	function getter(name, read) { Object.defineProperty(XMLHttpRequest.prototype, name, { get: read, enumerable: true }); }
	getter('readyState', function () { return this._.state; });
	getter('status', function () { return this._.status; });
	getter('statusText', function () { return this._.statusText; });
	getter('responseURL', function () { return this._.responseURL; });
	getter('response', function () {
		var x = this._;
		if (x.responseType === '' || x.responseType === 'text') { return x.state >= LOADING ? x.text() : ''; }
		return x.state === DONE ? x.response : null;
	});
	getter('responseText', function () {
		var x = this._;
		if (x.responseType !== '' && x.responseType !== 'text') {
			throw domError('InvalidStateError', "Failed to read the 'responseText' property from 'XMLHttpRequest': The value is only accessible if the object's 'responseType' is '' or 'text' (was '" + x.responseType + "').");
		}
		return x.state >= LOADING ? x.text() : '';
	});
	getter('responseXML', function () { return null; });
	Object.defineProperty(XMLHttpRequest.prototype, 'responseType', {
		get: function () { return this._.responseType; },
		set: function (type) {
			if (this._.state >= LOADING) { throw domError('InvalidStateError', "Failed to set the 'responseType' property on 'XMLHttpRequest': The response type cannot be set if the object's state is LOADING or DONE."); }
			type = String(type);
			// Unknown types (`document`, elmbox has no DOM) are ignored, as the standard says.
			if (RESPONSE_TYPES.indexOf(type) >= 0) { this._.responseType = type; }
		},
		enumerable: true
	});
	Object.defineProperty(XMLHttpRequest.prototype, 'timeout', {
		get: function () { return this._.timeout; },
		set: function (ms) { ms = Number(ms); this._.timeout = ms > 0 && isFinite(ms) ? Math.floor(ms) : 0; },
		enumerable: true
	});
	Object.defineProperty(XMLHttpRequest.prototype, 'withCredentials', {
		get: function () { return this._.withCredentials; },
		set: function (on) {
			if (this._.sent) { throw domError('InvalidStateError', "Failed to set the 'withCredentials' property on 'XMLHttpRequest': The value may only be set if the object's state is UNSENT or OPENED."); }
			// Kept for the app to read; elmbox sends no cookies either way.
			this._.withCredentials = !!on;
		},
		enumerable: true
	});

	XMLHttpRequest.prototype.open = function (method, url) {
		if (arguments.length < 2) { throw new TypeError("Failed to execute 'open' on 'XMLHttpRequest': 2 arguments required, but only " + arguments.length + ' present.'); }
		method = String(method);
		if (!TOKEN.test(method)) { throw domError('SyntaxError', "Failed to execute 'open' on 'XMLHttpRequest': '" + method + "' is not a valid HTTP method."); }
		if (FORBIDDEN_METHOD.test(method)) { throw domError('SecurityError', "Failed to execute 'open' on 'XMLHttpRequest': '" + method + "' HTTP method is unsupported."); }
		url = String(url);
		// No document, so no base to resolve against: only absolute URLs.
		if (!/^[A-Za-z][A-Za-z0-9+.-]*:\/\/[^\/?#\s]+[^\s]*$/.test(url)) {
			throw domError('SyntaxError', "Failed to execute 'open' on 'XMLHttpRequest': Invalid URL");
		}
		this._abandon();
		var x = this._;
		x.method = NORMALISED_METHOD.test(method) ? method.toUpperCase() : method;
		x.url = url;
		x.headers = [];
		x.sent = false;
		x.response = null;
		x.body = null;
		x.status = 0;
		x.statusText = '';
		x.responseURL = '';
		x.responseHeaders = [];
		x.state = OPENED;
		this.dispatchEvent({ type: 'readystatechange' });
	};

	XMLHttpRequest.prototype.setRequestHeader = function (name, value) {
		var x = this._;
		if (x.state !== OPENED || x.sent) { throw domError('InvalidStateError', "Failed to execute 'setRequestHeader' on 'XMLHttpRequest': The object's state must be OPENED."); }
		name = String(name);
		value = String(value).replace(/^[\t\n\r ]+|[\t\n\r ]+$/g, '');
		if (!TOKEN.test(name)) { throw domError('SyntaxError', "Failed to execute 'setRequestHeader' on 'XMLHttpRequest': '" + name + "' is not a valid HTTP header field name."); }
		if (/[\0\r\n]/.test(value)) { throw domError('SyntaxError', "Failed to execute 'setRequestHeader' on 'XMLHttpRequest': '" + value + "' is not a valid HTTP header field value."); }
		if (FORBIDDEN_HEADER.test(name.toLowerCase())) {
			console.warn("Refused to set unsafe header \"" + name + "\"");
			return;
		}
		// A name set again is combined into one header, as the standard says.
		for (var i = 0; i < x.headers.length; i++) {
			if (x.headers[i][0].toLowerCase() === name.toLowerCase()) {
				x.headers[i][1] += ', ' + value;
				return;
			}
		}
		x.headers.push([name, value]);
	};

	function hasHeader(x, name) {
		return x.headers.some(function (h) { return h[0].toLowerCase() === name; });
	}

	XMLHttpRequest.prototype.send = function (body) {
		var x = this._;
		if (x.state !== OPENED || x.sent) { throw domError('InvalidStateError', "Failed to execute 'send' on 'XMLHttpRequest': The object's state must be OPENED."); }
		var bytes = null, type = null;
		if (x.method !== 'GET' && x.method !== 'HEAD' && body !== undefined && body !== null) {
			if (body instanceof FormData) {
				var form = multipart(body);
				bytes = form.bytes;
				type = form.type;
			} else if (body instanceof Blob) {
				bytes = body._bytes;
				type = body.type || null;
			} else if (body instanceof ArrayBuffer || ArrayBuffer.isView(body)) {
				bytes = bytesOf(body);
			} else {
				bytes = bytesOf(String(body));
				type = 'text/plain;charset=UTF-8';
			}
		}
		if (type !== null && !hasHeader(x, 'content-type')) { x.headers.push(['Content-Type', type]); }
		x.sent = true;
		x.sentBytes = bytes ? bytes.length : 0;
		x.id = native.send(x.method, x.url, x.headers, x.timeout, bytes);
		waiting.set(x.id, this);
		this.dispatchEvent(progressEvent('loadstart', 0, 0, false));
		if (bytes && this.upload._listeners) { this.upload.dispatchEvent(progressEvent('loadstart', 0, x.sentBytes, true)); }
	};

	XMLHttpRequest.prototype.abort = function () {
		var x = this._;
		var wasSent = x.sent && waiting.get(x.id) === this;
		this._abandon();
		if (wasSent) {
			x.state = DONE;
			x.sent = false;
			this.dispatchEvent({ type: 'readystatechange' });
			this.dispatchEvent(progressEvent('abort', 0, 0, false));
			this.dispatchEvent(progressEvent('loadend', 0, 0, false));
		}
		if (x.state === DONE) { x.state = UNSENT; }
	};

	// Forgets a request in flight: the host is told, its answer ignored.
	Object.defineProperty(XMLHttpRequest.prototype, '_abandon', { value: function () {
		var x = this._;
		if (x.sent && waiting.get(x.id) === this) {
			waiting['delete'](x.id);
			native.abort(x.id);
		}
	} });

	XMLHttpRequest.prototype.getResponseHeader = function (name) {
		var x = this._;
		if (x.state < HEADERS_RECEIVED) { return null; }
		name = String(name).toLowerCase();
		var values = x.responseHeaders.filter(function (h) { return h[0] === name; }).map(function (h) { return h[1]; });
		return values.length ? values.join(', ') : null;
	};

	// Names lower-cased and sorted, a repeated name's values joined with
	// ", ", cookies left out: what a browser returns.
	XMLHttpRequest.prototype.getAllResponseHeaders = function () {
		var x = this._;
		if (x.state < HEADERS_RECEIVED) { return ''; }
		var names = [], values = {};
		x.responseHeaders.forEach(function (h) {
			if (h[0] === 'set-cookie' || h[0] === 'set-cookie2') { return; }
			if (!Object.prototype.hasOwnProperty.call(values, h[0])) { names.push(h[0]); values[h[0]] = []; }
			values[h[0]].push(h[1]);
		});
		names.sort();
		return names.map(function (n) { return n + ': ' + values[n].join(', ') + '\r\n'; }).join('');
	};

	XMLHttpRequest.prototype.overrideMimeType = function () {};

	// ---- Responses, from the host ------------------------------------------------------
	// deliver(id, outcome, status, statusText, url, headers, body): outcome
	// is 'load', 'error' or 'timeout'; headers [[name, value], ...]; body an
	// ArrayBuffer. Returns whether a request was waiting for it.

	function deliver(id, outcome, status, statusText, url, headers, body) {
		var xhr = waiting.get(id);
		if (!xhr) { return false; }
		waiting['delete'](id);
		var x = xhr._;
		x.sent = false;
		if (outcome !== 'load') {
			x.state = DONE;
			xhr.dispatchEvent({ type: 'readystatechange' });
			if (xhr.upload._listeners && x.sentBytes > 0) {
				xhr.upload.dispatchEvent(progressEvent(outcome, 0, 0, false));
				xhr.upload.dispatchEvent(progressEvent('loadend', 0, 0, false));
			}
			xhr.dispatchEvent(progressEvent(outcome, 0, 0, false));
			xhr.dispatchEvent(progressEvent('loadend', 0, 0, false));
			return true;
		}
		if (x.sentBytes > 0 && xhr.upload._listeners) {
			xhr.upload.dispatchEvent(progressEvent('progress', x.sentBytes, x.sentBytes, true));
			xhr.upload.dispatchEvent(progressEvent('load', x.sentBytes, x.sentBytes, true));
			xhr.upload.dispatchEvent(progressEvent('loadend', x.sentBytes, x.sentBytes, true));
		}
		x.status = status;
		x.statusText = statusText;
		x.responseURL = url;
		x.responseHeaders = headers.map(function (h) { return [String(h[0]).toLowerCase(), String(h[1])]; });
		x.state = HEADERS_RECEIVED;
		var declared = xhr.getResponseHeader('content-length');
		var length = Number(declared);
		var computable = declared !== null && declared !== '' && length >= 0 && isFinite(length);
		xhr.dispatchEvent({ type: 'readystatechange' });
		x.state = LOADING;
		var text = null;
		x.text = function () { return text === null ? (text = native.fromUtf8(body)) : text; };
		xhr.dispatchEvent({ type: 'readystatechange' });
		xhr.dispatchEvent(progressEvent('progress', body.byteLength, computable ? length : 0, computable));
		if (x.responseType === 'arraybuffer') {
			x.response = body;
		} else if (x.responseType === 'blob') {
			x.response = new Blob([body], { type: xhr.getResponseHeader('content-type') || '' });
		} else if (x.responseType === 'json') {
			try { x.response = JSON.parse(x.text()); } catch (e) { x.response = null; }
		}
		x.state = DONE;
		xhr.dispatchEvent({ type: 'readystatechange' });
		xhr.dispatchEvent(progressEvent('load', body.byteLength, computable ? length : 0, computable));
		xhr.dispatchEvent(progressEvent('loadend', body.byteLength, computable ? length : 0, computable));
		return true;
	}

	function install(name, value) {
		Object.defineProperty(globalThis, name, { value: value, writable: true, configurable: true });
	}
	install('XMLHttpRequest', XMLHttpRequest);
	install('XMLHttpRequestUpload', XMLHttpRequestUpload);
	install('Blob', Blob);
	install('File', File);
	install('FormData', FormData);
	return deliver;
})
