/* Spliced by tests/all/managers.rs into the scope of a real Elm program (so
   that it runs on Elm's own scheduler and effect managers, rewritten or
   not): two effect managers of our own, A and B, and an app whose events
   give them commands that take every way a manager's message can go.
   What happens, in order, goes to globalThis.elmboxTrace. */

var elmboxTrace = scope['elmboxTrace'] = [];
function elmboxNote() { elmboxTrace.push(Array.prototype.slice.call(arguments).join(' ')); }

/* A process of our own that waits in `receive`, as a manager does. */
function elmboxListen() {
	return _Scheduler_receive(function(msg) { elmboxNote('listener', msg); return elmboxListen(); });
}
var elmboxListener = _Scheduler_rawSpawn(elmboxListen());

/* Manager A: each command says what its onEffects does. Its state counts
   what it has done, so a state lost or left behind shows in the trace. */
function elmboxOnEffectsA(router, cmds, state) {
	var n = 0;
	for (var l = cmds; l.b; l = l.b) { n++; }
	elmboxNote('A effects', n, 'state', state);
	var result = _Scheduler_succeed(state + 1);
	for (var l = cmds; l.b; l = l.b) {
		var c = l.a;
		switch (c.act) {
			/* A message for A itself while it runs, and one for another process. */
			case 'self': _Scheduler_rawSend(router.h, { $: 0, a: c.msg }); break;
			case 'other': _Scheduler_rawSend(elmboxListener, c.msg); break;
			case 'spawn':
				_Scheduler_rawSpawn(_Scheduler_binding(function(callback) {
					elmboxNote('spawned', c.msg);
					callback(_Scheduler_succeed(0));
				}));
				break;
			/* A message to the app while A runs (a port's send does this). */
			case 'app': router.g(c.msg); break;
			case 'chain':
				result = A2(_Scheduler_andThen, function(v) {
					elmboxNote('A chain', v);
					return _Scheduler_succeed(v + 100);
				}, result);
				break;
			case 'sleep':
				result = elmboxAfter(_Process_sleep(c.ms), A2(_Scheduler_andThen, function(v) {
					elmboxNote('A woke', v);
					return _Scheduler_succeed(v + 1000);
				}, result));
				break;
			case 'selfTask': result = elmboxAfter(A2(_Platform_sendToSelf, router, c.msg), result); break;
			case 'fail': result = _Scheduler_fail(state); break;
		}
	}
	return result;
}
function elmboxAfter(first, then) {
	return A2(_Scheduler_andThen, function() { return then; }, first);
}
function elmboxOnSelfMsgA(router, msg, state) {
	elmboxNote('A self', msg, 'state', state);
	return _Scheduler_succeed(state + 10);
}
var elmboxSendToApp;
function elmboxOnEffectsB(router, cmds, state) {
	elmboxSendToApp = router.g;
	var n = 0;
	for (var l = cmds; l.b; l = l.b) { n++; }
	elmboxNote('B effects', n, 'state', state);
	return _Scheduler_succeed(state + 1);
}
var elmboxSameCommand = F2(function(tagger, command) { return command; });
/* Manager C maps its commands with their taggers (the Cmd.maps they came
   through): one that came through none reaches it as it was. */
function elmboxOnEffectsC(router, cmds, state) {
	var seen = [];
	for (var l = cmds; l.b; l = l.b) { seen.push(l.a.tagged); }
	elmboxNote('C effects', seen.join(' '), 'state', state);
	return _Scheduler_succeed(state + 1);
}
var elmboxTagCommand = F2(function(tagger, command) {
	return { act: command.act, tagged: tagger(command.act) };
});
_Platform_effectManagers['ElmboxA'] = _Platform_createManager(
	_Scheduler_succeed(0), F3(elmboxOnEffectsA), F3(elmboxOnSelfMsgA), elmboxSameCommand);
_Platform_effectManagers['ElmboxB'] = _Platform_createManager(
	_Scheduler_succeed(0), F3(elmboxOnEffectsB), F3(elmboxOnSelfMsgA), elmboxSameCommand);
_Platform_effectManagers['ElmboxC'] = _Platform_createManager(
	_Scheduler_succeed(0), F3(elmboxOnEffectsC), F3(elmboxOnSelfMsgA), elmboxTagCommand);

/* The app: each message carries the commands its update gives, each
   through the Cmd.maps its `map` names, innermost first. */
function elmboxCommands(msg) {
	return _Platform_batch(_List_fromArray((msg.cmds || []).map(function(c) {
		var command = _Platform_leaf(c.home)(c);
		(c.map || []).forEach(function(name) {
			command = A2(_Platform_map, function(x) { return name + '(' + x + ')'; }, command);
		});
		return command;
	})));
}
_Platform_initialize(
	_Json_succeed(0),
	{ flags: 0 },
	function() { return _Utils_Tuple2(0, elmboxCommands({ cmds: [{ home: 'ElmboxB' }] })); },
	F2(function(msg, model) {
		elmboxNote('update', msg.name, 'model', model);
		return _Utils_Tuple2(model + 1, elmboxCommands(msg));
	}),
	function() { return _Platform_batch(_List_fromArray([])); },
	function() { return function() {}; });

/* The events, sent as an incoming port sends them: to the app's sendToApp,
   which B's router holds. */
(function() {
	var events = [
		{ name: 'nothing' },
		{ name: 'succeed', cmds: [{ home: 'ElmboxA', act: 'succeed' }, { home: 'ElmboxA', act: 'succeed' }] },
		/* A manager gets its commands last first: o1 goes first, and A's own
		   message s1, sent after it, must still come first. */
		{ name: 'other then self', cmds: [{ home: 'ElmboxA', act: 'self', msg: 's1' }, { home: 'ElmboxA', act: 'other', msg: 'o1' }] },
		{ name: 'spawn', cmds: [{ home: 'ElmboxA', act: 'spawn', msg: 'p1' }, { home: 'ElmboxB' }] },
		{ name: 'chain', cmds: [{ home: 'ElmboxA', act: 'chain' }] },
		{ name: 'app', cmds: [{ home: 'ElmboxA', act: 'app', msg: { name: 'from A', cmds: [{ home: 'ElmboxB' }, { home: 'ElmboxA', act: 'self', msg: 's2' }] } }] },
		{ name: 'self task', cmds: [{ home: 'ElmboxA', act: 'selfTask', msg: 'st' }] },
		{ name: 'sleep', cmds: [{ home: 'ElmboxA', act: 'sleep', ms: 0 }] },
		{ name: 'while A sleeps', cmds: [{ home: 'ElmboxA', act: 'other', msg: 'o2' }, { home: 'ElmboxB' }] },
		{ name: 'again while A sleeps', cmds: [{ home: 'ElmboxA', act: 'self', msg: 's3' }] },
	];
	/* Elm starts a process's binding again each time the process is stepped
	   while it waits in it, so each event sent while A sleeps arms another
	   timer, and the later ones wake A again from `receive` with the sleep's
	   value (0) as its state: Elm's behaviour, which the rewrite keeps. */
	var after = [
		{ name: 'after the sleep', cmds: [{ home: 'ElmboxA', act: 'succeed' }] },
		{ name: 'fail', cmds: [{ home: 'ElmboxA', act: 'fail' }] },
		{ name: 'A is gone', cmds: [{ home: 'ElmboxA', act: 'succeed' }, { home: 'ElmboxB' }] },
		{ name: 'tagged', cmds: [{ home: 'ElmboxC', act: 'plain' }, { home: 'ElmboxC', act: 'once', map: ['m1'] }, { home: 'ElmboxC', act: 'twice', map: ['inner', 'outer'] }, { home: 'ElmboxC', act: 'again' }] },
	];
	var send = function(msg) { elmboxSendToApp(msg); };
	events.forEach(send);
	setTimeout(function() { after.forEach(send); elmboxNote('done'); }, 5);
})();
