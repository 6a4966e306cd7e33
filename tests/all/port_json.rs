//! What an outgoing port's subscriber writes (the guest's own JSON writer,
//! `guest/src/json.rs`, with `JSON.stringify` for what it gives up on) is,
//! byte for byte, what `JSON.stringify` writes in the same engine: for the
//! plain data Elm sends and for everything else a port can be handed.

use elmbox_tests::load;

/// Values an app can send, as JavaScript expressions (made afresh for each
/// event). Each is sent twice: as `JSON.stringify` writes it (a string),
/// then as itself.
const VALUES: &[&str] = &[
    "null",
    "true",
    "false",
    "0",
    "-0",
    "42",
    "-2147483648",
    "2147483648",
    "9007199254740991",
    "9007199254740993",
    "-9007199254740992",
    "0.1",
    "-1.5e-7",
    "1e21",
    "123456789012345680000",
    "5e-324",
    "1.7976931348623157e308",
    "NaN",
    "-Infinity",
    "1 / 3",
    "''",
    "'plain'",
    "'quote \" backslash \\\\ slash /'",
    "'\\n\\r\\t\\b\\f\\u0000\\u0001\\u001f\\u007f'",
    "'é ü 中文 😀'",
    "'\\u2028\\u2029'",
    "'lone \\ud800 high'",
    "'lone \\udc00 low'",
    "'pair \\ud83d\\ude00'",
    "{}",
    "[]",
    "{ count: 1, event: 'e1' }",
    "{ b: 1, a: 2, 10: 'ten', 2: 'two', '-1': 'minus' }",
    "[1, [2, [3, [4, { deep: [] }]]]]",
    "[1, , 3]",
    "[undefined, function () {}, Symbol('s')]",
    "{ u: undefined, f: function () {}, s: Symbol('s'), kept: 1 }",
    "{ u: undefined }",
    "{ first: undefined, second: 2 }",
    "(function () { var a = [1, 2]; a.extra = 3; return a; })()",
    "Object.create(null)",
    "(function () { var o = Object.create(null); o.x = 1; return o; })()",
    "Object.create({ inherited: 1 })",
    "(function () { var o = {}; Object.defineProperty(o, 'hidden', { value: 1 }); o.shown = 2; return o; })()",
    "{ get computed() { return 'got'; } }",
    "{ when: new Date(0) }",
    "{ toJSON: function () { return 'custom'; } }",
    "[{ toJSON: function (key) { return 'at ' + key; } }]",
    "{ n: new Number(3), s: new String('boxed'), b: new Boolean(false) }",
    "new Map([[1, 2]])",
    "[new Set([1])]",
    "{ re: /x/g, err: new Error('e') }",
    "new Uint8Array([1, 2])",
    "{ 'key \"quoted\"\\n': 'v', 'ключ': 1 }",
    "{ '\\ud800': 'lone key' }",
    "(function () { var o = {}; for (var i = 0; i < 100; i++) o['k' + i] = [i, -i, i / 7]; return o; })()",
    "(function () { var a = []; for (var i = 0; i < 600; i++) a = [a]; return a; })()",
    "(function () { var o = { a: 1 }; delete o.a; o.b = 2; return o; })()",
];

fn app() -> String {
    let values: Vec<String> = VALUES
        .iter()
        .map(|v| format!("function () {{ return {v}; }}"))
        .collect();
    elmbox_tests::elm_like(&format!(
        "var values = [{}];
         function init() {{ var subs = []; return {{ ports: {{
           onEvent: {{ send: function (i) {{
             var text = JSON.stringify(values[Number(i)]());
             subs.forEach(function (s) {{ s(text === undefined ? 'undefined' : text); }});
             subs.forEach(function (s) {{ s(values[Number(i)]()); }});
           }} }},
           respond: {{ subscribe: function (f) {{ subs.push(f); }} }} }} }}; }}",
        values.join(",\n")
    ))
}

#[test]
fn a_ports_values_are_written_as_json_stringify_writes_them() {
    let mut app = load(app().as_bytes());
    for (i, expression) in VALUES.iter().enumerate() {
        let reply = app.dispatch_json(i.to_string()).unwrap();
        // `["<JSON.stringify's text>",<the subscriber's text>]`
        let body = reply
            .strip_prefix('[')
            .and_then(|r| r.strip_suffix(']'))
            .unwrap_or_else(|| panic!("{expression}: not an array: {reply}"));
        let mut stream = serde_json::Deserializer::from_str(body).into_iter::<String>();
        let expected = stream.next().unwrap().unwrap();
        let written = body[stream.byte_offset()..]
            .strip_prefix(',')
            .unwrap_or_else(|| panic!("{expression}: one value only: {reply}"));
        let expected = if expected == "undefined" {
            "null"
        } else {
            &expected
        };
        assert_eq!(written, expected, "{expression}");
    }
}

#[test]
fn a_value_json_stringify_refuses_fails_the_send_as_before() {
    for value in [
        "[1n]",
        "(function () { var o = {}; o.self = o; return o; })()",
    ] {
        let app = elmbox_tests::elm_like(&format!(
            "function init() {{ var subs = []; return {{ ports: {{
               onEvent: {{ send: function () {{ subs.forEach(function (s) {{ s({value}); }}); }} }},
               respond: {{ subscribe: function (f) {{ subs.push(f); }} }} }} }}; }}"
        ));
        let mut app = load(app.as_bytes());
        let error = app.dispatch("x").expect_err(value).to_string();
        assert!(error.contains("TypeError"), "{value}: {error}");
    }
}
