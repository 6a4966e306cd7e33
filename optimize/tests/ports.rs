//! When the outgoing-port manager stops parking on a timer after each batch,
//! and every way a program can differ from Elm's that leaves it as it is.

use elmbox_optimize::optimize;

/// The parts of Elm 0.19's runtime the rewrite looks at, in the shape and
/// with the names `elm make` gives them (written for these tests), then
/// `ports` and `extra`.
fn elm(ports: &str, extra: &str) -> String {
    format!(
        "(function(scope){{\n'use strict';\n\
         var _Utils_Tuple0 = 0;\n\
         function F3(fun) {{ return fun; }}\n\
         function _Scheduler_succeed(value)\n{{\n\treturn {{\n\t\t$: 0,\n\t\ta: value\n\t}};\n}}\n\
         function _Scheduler_binding(callback) {{ return {{ $: 2, b: callback, c: null }}; }}\n\
         function _Process_sleep(time)\n{{\n\
         \treturn _Scheduler_binding(function(callback) {{\n\
         \t\tvar id = setTimeout(function() {{\n\
         \t\t\tcallback(_Scheduler_succeed(_Utils_Tuple0));\n\
         \t\t}}, time);\n\n\
         \t\treturn function() {{ clearTimeout(id); }};\n\
         \t}});\n}}\n\
         var _Platform_effectManagers = {{}};\n\
         function _Platform_outgoingPort(name, converter)\n{{\n\
         \t_Platform_effectManagers[name] = {{ u: converter, a: _Platform_setupOutgoingPort }};\n\
         \treturn name;\n}}\n\
         function _Platform_setupOutgoingPort(name)\n{{\n\
         \tvar subs = [];\n\
         \tvar converter = _Platform_effectManagers[name].u;\n\
         \tvar init = _Process_sleep(0);\n\
         \t_Platform_effectManagers[name].b = init;\n\
         \t_Platform_effectManagers[name].c = F3(function(router, cmdList, state)\n\t{{\n\
         \t\tfor ( ; cmdList.b; cmdList = cmdList.b) // WHILE_CONS\n\t\t{{\n\
         \t\t\tvar currentSubs = subs;\n\
         \t\t\tvar value = converter(cmdList.a);\n\
         \t\t\tfor (var i = 0; i < currentSubs.length; i++)\n\t\t\t{{\n\
         \t\t\t\tcurrentSubs[i](value);\n\t\t\t}}\n\t\t}}\n\
         \t\treturn init;\n\t}});\n\
         {extra}\n\
         \treturn {{ subscribe: function(callback) {{ subs.push(callback); }} }};\n}}\n\
         {ports}\n\
         }}(this));\n"
    )
}

const ONE_PORT: &str =
    "var respond = _Platform_outgoingPort('respond', function (v) { return v; });";

#[test]
fn the_one_outgoing_port_takes_each_batch_at_once_after_its_first_sleep() {
    let js = elm(ONE_PORT, "");
    let out = optimize(&js).expect("rewritten");
    assert!(out.outgoing_ports_awake);
    assert_eq!(out.direct_calls, 0);
    // What the manager returns after a batch is the sleep's result...
    assert!(
        out.source
            .contains("\t\treturn _Scheduler_succeed(_Utils_Tuple0);\n\t});"),
        "{}",
        out.source
    );
    assert!(!out.source.contains("return init;"), "{}", out.source);
    // ...while it still starts on the sleep, so init's commands wait for the
    // host to subscribe.
    assert!(out
        .source
        .contains("\tvar init = _Process_sleep(0);\n\t_Platform_effectManagers[name].b = init;"));
    assert_eq!(out.source.lines().count(), js.lines().count());
}

#[test]
fn two_outgoing_ports_or_none_are_left_as_they_are() {
    let two = format!(
        "{ONE_PORT}\nvar log = _Platform_outgoingPort('log', function (v) {{ return v; }});"
    );
    assert_eq!(optimize(&elm(&two, "")), None, "two ports");
    assert_eq!(optimize(&elm("", "")), None, "no port");
    // A port made some other way than by a call counts as one more.
    let aliased = format!("{ONE_PORT}\nvar makePort = _Platform_outgoingPort;");
    assert_eq!(optimize(&elm(&aliased, "")), None, "an alias");
}

#[test]
fn a_runtime_that_is_not_elms_is_left_as_it_is() {
    let js = elm(ONE_PORT, "");
    // The control: the same text with nothing changed is rewritten.
    assert!(optimize(&js).is_some());
    let cases = [
        // A sleep that is not Elm's.
        ("}, time);", "}, time + 1);"),
        // A manager that parks for longer.
        ("var init = _Process_sleep(0);", "var init = _Process_sleep(1);"),
        // `init` read somewhere else too.
        ("\treturn { subscribe:", "\tscope.leak = init;\n\treturn { subscribe:"),
        // `init` changed.
        ("\treturn { subscribe:", "\tinit = null;\n\treturn { subscribe:"),
        // The manager returns something else as well.
        ("\t\treturn init;", "\t\tif (state) { return state; }\n\t\treturn init;"),
        // A name the new text uses is bound twice (so it could be shadowed).
        ("var _Platform_effectManagers", "function shadow() { var _Utils_Tuple0 = 1; }\nvar _Platform_effectManagers"),
        // The program has a `setTimeout` of its own.
        ("var _Platform_effectManagers", "function setTimeout(f) { f(); }\nvar _Platform_effectManagers"),
        // A second `_Process_sleep`.
        ("var _Platform_effectManagers", "function later() { function _Process_sleep() {} }\nvar _Platform_effectManagers"),
        // The setup function is used by something besides the port maker.
        ("var _Platform_effectManagers", "var other = function () { return _Platform_setupOutgoingPort; };\nvar _Platform_effectManagers"),
    ];
    for (from, to) in cases {
        assert!(js.contains(from), "{from}");
        let changed = js.replacen(from, to, 1);
        assert_eq!(optimize(&changed), None, "rewritten with {to:?}");
    }
}
