// timers: Process.sleep, Time.every and Debug.log. Mirrors
// examples/timers/src/Main.elm, a DEV build (Debug.log forbids --optimize).

console.warn('Compiled in DEV mode. Follow the advice at https://elm-lang.org/0.19.1/optimize for better performance and smaller assets.');
devMode = true;

var respond = outgoingPort('respond');
var onEvent = incomingPort('onEvent', decodeString);

function Event(text) { return { tag: 'Event', text: text }; }
function Delayed(text) { return { tag: 'Delayed', text: text }; }
function Tick(posix) { return { tag: 'Tick', posix: posix }; }

exportElm({ Main: worker({
	ports: { onEvent: onEvent, respond: respond },
	decodeFlags: function () { return { ok: true, value: null }; },
	init: function () { return { model: { ticks: 0 }, cmd: none }; },
	update: function (msg, model) {
		switch (msg.tag) {
			case 'Event':
				debugLog('event', msg.text);
				return {
					model: model,
					cmd: batch([
						respond.cmd({ received: msg.text }),
						taskPerform(function () { return Delayed(msg.text); }, processSleep(1000))
					])
				};
			case 'Delayed':
				return { model: model, cmd: respond.cmd({ delayed: msg.text }) };
			case 'Tick':
				var ticks = model.ticks + 1;
				return { model: { ticks: ticks }, cmd: respond.cmd({ tick: ticks, posix: msg.posix }) };
		}
	},
	subscriptions: function () { return batch([onEvent.sub(Event), timeEvery(500, Tick)]); }
}) });
