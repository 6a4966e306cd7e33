//! A real Elm program we did not write: elm-analyse 0.16.5 (its compiled
//! `Platform.worker`, `dist/app/backend-elm.js` of the npm package, ~700 KB,
//! 24 ports), analysing a small project this test writes, through
//! `elmbox run --ports` and through Node.js. One driver
//! (`tests/elm-analyse/driver.js`) answers the app's requests from the
//! project in memory on both engines; every message both ways and every
//! report must be the same, and the reports must say what we planted.
//!
//! `make test` installs the package (`make elm-analyse`) and names it in
//! `ELMBOX_ELM_ANALYSE`; Node.js must be on the PATH.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

use elmbox_tests::{elm_analyse_app, elmbox_bin};
use serde_json::{json, Value};

/// The fixes the driver applies after the first analysis, in order; each is
/// stored, seen by the (simulated) file watcher and analysed again.
const FIXES: &str = "UnusedImport,UnusedImportAlias";

/// The dependencies are out of order on purpose: the app asks for them in
/// the order the flags hold them, so the flags must reach it unchanged.
const ELM_JSON: &str = r#"{
    "type": "application",
    "source-directories": [
        "src"
    ],
    "elm-version": "0.19.1",
    "dependencies": {
        "direct": {
            "elm/json": "1.1.3",
            "elm/core": "1.0.5"
        },
        "indirect": {}
    },
    "test-dependencies": {
        "direct": {},
        "indirect": {}
    }
}
"#;

/// Turns on a check that is off by default, turns off one that is on, and
/// sets the trigger words: the report shows the configuration was read.
const CONFIG: &str = r#"{
    "checks": {
        "FunctionInLet": true,
        "SingleFieldRecord": false
    },
    "TriggerWords": {
        "words": ["todo"]
    }
}
"#;

/// Unused imports, an unused alias, an unused variable, a function in a
/// `let`, a trigger word, `Debug.log`, and non-ASCII text (the ranges after
/// it count characters, not bytes or UTF-16 units).
const MAIN: &str = r#"port module Main exposing (main)

import Data.Shape exposing (Shape(..), area)
import Dict
import Json.Decode as Decode
import Platform


port respond : String -> Cmd msg


main : Program () Int Int
main =
    Platform.worker
        { init = \_ -> ( 0, Cmd.none )
        , update = update
        , subscriptions = \_ -> Sub.none
        }


update : Int -> Int -> ( Int, Cmd Int )
update msg model =
    let
        unused =
            42

        double x =
            x * 2
    in
    -- TODO: stop logging every update
    ( Debug.log "model" (double model + msg), respond (String.fromFloat (area (Circle 1.0))) )


greeting : String
greeting =
    "héllo wörld 😀 — ✓" ++ {- todo: naïve 😀 -} "!"
"#;

/// An unused type alias (a single-field record, a check turned off), an
/// `if` returning literal booleans, a missing signature, `[x] ++ list` and
/// an unused top-level function.
const SHAPE: &str = r#"module Data.Shape exposing (Shape(..), area, isRound, describe)

import List exposing (map)


type Shape
    = Circle Float
    | Square Float


type alias Unused =
    { side : Float }


area : Shape -> Float
area shape =
    case shape of
        Circle r ->
            pi * (r * r)

        Square side ->
            side * side


isRound : Shape -> Bool
isRound shape =
    if isCircle shape then
        True

    else
        False


isCircle shape =
    case shape of
        Circle _ ->
            True

        Square _ ->
            False


describe : List Shape -> List String
describe shapes =
    [ "shapes:" ] ++ List.map (\(s) -> String.fromFloat (area s)) shapes


helper : Int -> Int
helper x =
    x + 0
"#;

/// Does not parse: reported as a file that failed to load.
const BROKEN: &str = "module Data.Broken exposing (oops)\n\n\noops : Int\noops =\n    case of\n";

/// The project, by path, as the driver takes it. `src/helpers/` is not a
/// module path (lower case), so elm-analyse's file gatherer skips it.
fn project() -> Value {
    json!({
        "elm.json": ELM_JSON,
        "elm-analyse.json": CONFIG,
        "src/Main.elm": MAIN,
        "src/Data/Shape.elm": SHAPE,
        "src/Data/Broken.elm": BROKEN,
        "src/helpers/NotAModule.elm": "module helpers.NotAModule exposing (x)\nx = 1\n",
    })
}

/// Runs the driver on `engine` ("node" or "elmbox"), the project on its
/// stdin; returns its transcript, complete or as far as the run went.
fn drive(engine: &str) -> Value {
    let driver = Path::new(env!("CARGO_MANIFEST_DIR")).join("elm-analyse/driver.js");
    let app = elm_analyse_app();
    let mut child = Command::new("node")
        .arg(&driver)
        .arg("--app")
        .arg(&app)
        .args(["--engine", engine, "--project", "-", "--fix", FIXES])
        .arg("--elmbox")
        .arg(elmbox_bin())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("node starts (Node.js must be on the PATH): {e}"));
    child
        .stdin
        .take()
        .unwrap()
        .write_all(project().to_string().as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "the driver failed on {engine}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("the driver prints JSON")
}

/// Says how far a run went and why it stopped, if it did not finish.
fn finished(transcript: &Value) {
    assert_eq!(
        transcript["error"],
        Value::Null,
        "the run on {} broke off after {} messages; stderr: {}",
        transcript["engine"],
        transcript["steps"].as_array().map_or(0, Vec::len),
        transcript["stderr"]
    );
}

#[test]
fn elm_analyse_says_the_same_on_elmbox_as_on_node() {
    // `elmbox run` rewrites Elm output before evaluating (on by default):
    // this being real Elm output, the comparison covers that too. With 13
    // outgoing ports, whose values could come out in another order between
    // ports if they took their batches at once, those are left as they are.
    let source = std::fs::read_to_string(elm_analyse_app()).unwrap();
    let rewritten = elmbox_optimize::optimize(&source).expect("real Elm output is rewritten");
    let calls = rewritten.direct_calls;
    assert!(calls > 1000, "only {calls} calls made direct");
    assert!(
        !rewritten.outgoing_ports_awake,
        "13 outgoing ports, rewritten"
    );
    assert!(
        rewritten.managers_take_messages_at_once,
        "Elm's runtime, and its managers left as they were"
    );
    // Both engines at once: they are independent processes.
    let elmbox = std::thread::spawn(|| drive("elmbox"));
    let node = drive("node");
    let elmbox = elmbox.join().unwrap();

    // First what the analysis found on Node, the reference; then that
    // elmbox sent and heard exactly the same, and ended cleanly.
    finished(&node);
    check_reports(&node);
    check_fixes(&node);
    check_ports(&node);
    same_traffic(&node, &elmbox);
    finished(&elmbox);
    assert_eq!(elmbox["exitStatus"], 0, "elmbox: {}", elmbox["stderr"]);
    assert_eq!(elmbox["stderr"], "", "elmbox wrote to stderr");
}

/// A report's messages, in its order, as "FILE CHECK: DESCRIPTION".
fn messages(report: &Value) -> Vec<String> {
    report["messages"]
        .as_array()
        .expect("a report lists messages")
        .iter()
        .map(|m| {
            let s = |v: &Value| v.as_str().unwrap_or_default().to_string();
            let (file, check) = (s(&m["file"]), s(&m["type"]));
            format!("{file} {check}: {}", s(&m["data"]["description"]))
        })
        .collect()
}

/// What every report says, before and after the imports of Main.elm.
const BEFORE_IMPORTS: &[&str] = &[
    "src/Data/Broken.elm FileLoadFailed: Could not load file due to: Unexpected parse error",
    "src/Data/Shape.elm UnusedTypeAlias: Type alias `Unused` is not used at ((11,1),(12,21))",
    "src/Data/Shape.elm UnnecessaryLiteralBools: Replace if-block with just the if-condition ((27,5),(34,1))",
    "src/Data/Shape.elm NoTopLevelSignature: No signature for top level definition `isCircle` at ((34,1),(34,9))",
    "src/Data/Shape.elm UseConsOverConcat: Use `::` instead of `++` at ((45,5),(45,73))",
    "src/Data/Shape.elm UnusedTopLevel: Unused top level definition `helper` at ((49,1),(49,7))",
];
const AFTER_IMPORTS: &[&str] = &[
    "src/Main.elm UnusedVariable: Unused variable `unused` at ((24,9),(24,15))",
    "src/Main.elm FunctionInLet: Let statement containing functions should be avoided at ((27,9),(27,15))",
    "src/Main.elm TriggerWords: `todo` should not be used in comments at ((30,5),(30,39))",
    "src/Main.elm DebugLog: Use of Debug.log at ((31,7),(31,16))",
    "src/Main.elm UnusedTopLevel: Unused top level definition `greeting` at ((35,1),(35,9))",
    // Column 28: characters (the emoji is one), not bytes or UTF-16 units.
    "src/Main.elm TriggerWords: `todo` should not be used in comments at ((36,28),(36,47))",
];

/// The messages on Main.elm's imports in each report: the analysis, then
/// after `import Dict` is removed, then after the alias is.
const IMPORTS: [&[&str]; 3] = [
    &[
        "src/Main.elm UnusedImport: Unused import `Dict` at ((4,1),(4,12))",
        "src/Main.elm UnusedImportAlias: Unused import alias `Decode` at ((5,1),(5,29))",
    ],
    &["src/Main.elm UnusedImportAlias: Unused import alias `Decode` at ((5,1),(5,29))"],
    // Without its alias, the import itself is unused.
    &["src/Main.elm UnusedImport: Unused import `Json.Decode` at ((5,1),(5,19))"],
];

fn check_reports(transcript: &Value) {
    let reports = transcript["reports"].as_array().unwrap();
    assert_eq!(
        reports.len(),
        3,
        "one report for the analysis and one after each of the fixes {FIXES}"
    );
    for (i, (report, imports)) in reports.iter().zip(IMPORTS).enumerate() {
        let expected = [BEFORE_IMPORTS, imports, AFTER_IMPORTS].concat();
        let got = messages(report);
        for (n, (got, want)) in got.iter().zip(&expected).enumerate() {
            assert_eq!(got, want, "report {i}, message {n}");
        }
        assert_eq!(got.len(), expected.len(), "report {i}: {got:#?}");
        // No package is installed, so no dependency but core is seen in use.
        assert_eq!(
            report["unusedDependencies"],
            json!(["elm/json"]),
            "report {i}"
        );
    }
    let modules = &reports[0]["modules"]["projectModules"];
    assert_eq!(modules, &json!([["Data", "Shape"], ["Main"]]));
}

/// What the fixes sent: quick fixes as file contents, real fixes as files
/// stored (here, in the driver's memory).
fn check_fixes(transcript: &Value) {
    let received: Vec<&Value> = transcript["steps"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|s| s["received"].as_array().unwrap())
        .collect();
    let on = |port: &str| -> Vec<&Value> {
        received
            .iter()
            .filter(|m| m["port"] == port)
            .map(|m| &m["value"])
            .collect()
    };
    // Quick fixes exist for the type alias and the two imports.
    let quick = on("sendFixedFile");
    let quick_paths: Vec<&str> = quick.iter().map(|f| f["path"].as_str().unwrap()).collect();
    assert_eq!(
        quick_paths,
        ["src/Data/Shape.elm", "src/Main.elm", "src/Main.elm"]
    );
    let without_alias = quick[0]["content"].as_str().unwrap();
    assert!(
        !without_alias.contains("type alias Unused"),
        "{without_alias}"
    );
    assert!(without_alias.contains("type Shape"), "{without_alias}");

    let stored = on("storeFile");
    assert_eq!(stored.len(), 2, "{stored:#?}");
    let last = stored[1]["newContent"].as_str().unwrap();
    assert!(
        last.starts_with(
            "port module Main exposing (main)\n\nimport Data.Shape exposing (Shape(..), area)\n\nimport Json.Decode\nimport Platform\n"
        ),
        "{last}"
    );
    assert_eq!(
        on("log")
            .iter()
            .filter_map(|l| l["message"].as_str())
            .filter(|m| m.starts_with("Fixed message"))
            .collect::<Vec<_>>(),
        [
            "Fixed message: Unused import `Dict` at ((4,1),(4,12))",
            "Fixed message: Unused import alias `Decode` at ((5,1),(5,29))"
        ]
    );
}

/// The two transcripts message for message; on the first difference, says
/// which message it is, what was sent before it, and where inside its value
/// the two differ.
fn same_traffic(node: &Value, elmbox: &Value) {
    let steps = |t: &Value| t["steps"].as_array().unwrap().clone();
    let (a, b) = (steps(node), steps(elmbox));
    for (i, (x, y)) in a.iter().zip(&b).enumerate() {
        let what = if i == 0 {
            "what the app sent while starting".to_string()
        } else {
            format!("the answer to message {i} ({})", brief(&x["sent"]))
        };
        if let Some((path, p, q)) = difference(&x["sent"], &y["sent"], "sent") {
            panic!(
                "message {i} differs at {path}: Node {} / elmbox {}",
                brief(&p),
                brief(&q)
            );
        }
        let (xs, ys) = (
            x["received"].as_array().unwrap(),
            y["received"].as_array().unwrap(),
        );
        for (j, (p, q)) in xs.iter().zip(ys).enumerate() {
            if let Some((path, p, q)) = difference(p, q, "") {
                panic!(
                    "{what}: output {j} differs at {path}:\n  Node:   {}\n  elmbox: {}",
                    brief(&p),
                    brief(&q)
                );
            }
        }
        let extra = if xs.len() > ys.len() {
            &xs[ys.len()..]
        } else {
            &ys[xs.len()..]
        };
        assert_eq!(
            xs.len(),
            ys.len(),
            "{what}: Node sent {} values, elmbox {}; the extra ones: {}",
            xs.len(),
            ys.len(),
            brief(&Value::from(extra.to_vec()))
        );
        // The same values may still be written differently (key order,
        // number formats, string escapes): the text must be the same too.
        if let Some((at, p, q)) = difference(&x["line"], &y["line"], "the line") {
            panic!(
                "{what}: {at}:\n  Node:   {}\n  elmbox: {}",
                brief(&p),
                brief(&q)
            );
        }
    }
    assert_eq!(
        a.len(),
        b.len(),
        "Node exchanged {} messages, elmbox {}; elmbox's error: {}; its stderr: {}",
        a.len(),
        b.len(),
        elmbox["error"],
        elmbox["stderr"]
    );
    assert_eq!(node["reports"], elmbox["reports"]);
}

/// Enough traffic to mean something: every stage of the app took part,
/// on 23 of its 24 ports (all but `onReset`).
fn check_ports(transcript: &Value) {
    let steps = transcript["steps"].as_array().unwrap();
    let ports: std::collections::BTreeSet<&str> = steps
        .iter()
        .flat_map(|s| {
            s["received"]
                .as_array()
                .unwrap()
                .iter()
                .chain(Some(&s["sent"]))
        })
        .filter_map(|m| m["port"].as_str())
        .collect();
    for port in [
        "loadContext",
        "onLoadedContext",
        "loadRawDependency",
        "onRawDependency",
        "loadHttpDocumentation",
        "onHttpDocumentation",
        "loadDependencyFiles",
        "onDependencyFiles",
        "loadFile",
        "fileContent",
        "storeAstForSha",
        "onFixQuick",
        "sendFixedFile",
        "onFixMessage",
        "loadFileContentWithSha",
        "onFileContentWithShas",
        "storeFile",
        "onStoredFiles",
        "fileWatch",
        "sendReportValue",
        "sendState",
        "storeRawDependency",
        "log",
    ] {
        assert!(ports.contains(port), "no message on {port}: {ports:?}");
    }
}

/// The first place where `a` and `b` differ, as a JSON path and both values.
fn difference(a: &Value, b: &Value, path: &str) -> Option<(String, Value, Value)> {
    match (a, b) {
        (Value::Object(x), Value::Object(y)) if x.keys().eq(y.keys()) => x
            .iter()
            .find_map(|(k, v)| difference(v, &y[k], &format!("{path}.{k}"))),
        (Value::Array(x), Value::Array(y)) if x.len() == y.len() => x
            .iter()
            .zip(y)
            .enumerate()
            .find_map(|(i, (v, w))| difference(v, w, &format!("{path}[{i}]"))),
        (Value::String(x), Value::String(y)) if x != y => {
            // Long strings (file contents, ASTs): show where they part.
            let at = x.chars().zip(y.chars()).take_while(|(c, d)| c == d).count();
            let tail =
                |s: &str| Value::String(s.chars().skip(at.saturating_sub(20)).take(120).collect());
            Some((format!("{path} (character {at})"), tail(x), tail(y)))
        }
        _ if a != b => Some((
            if path.is_empty() {
                "the top".into()
            } else {
                path.into()
            },
            a.clone(),
            b.clone(),
        )),
        _ => None,
    }
}

/// A value's JSON, cut short.
fn brief(value: &Value) -> String {
    let text = value.to_string();
    match text.char_indices().nth(300) {
        Some((cut, _)) => format!("{}… ({} bytes)", &text[..cut], text.len()),
        None => text,
    }
}

/// `List.sortWith`'s comparison reads the app's `Order` as a number only
/// where `LT`, `EQ` and `GT` are declared as 0, 1 and 2 (`--optimize`), as
/// in elm-analyse; with any of them another value (a debug build's are
/// objects), Elm's own comparison is kept.
#[test]
fn sort_with_reads_orders_as_numbers_only_where_they_are_numbers() {
    let source = std::fs::read_to_string(elm_analyse_app()).unwrap();
    let rewritten = elmbox_optimize::optimize(&source).expect("real Elm output is rewritten");
    assert!(rewritten.sorts_read_orders_as_numbers);
    assert!(rewritten.source.contains("return ord - 1;"));

    // The names of EQ and LT, as `_List_sortWith` reads them.
    let test = source
        .lines()
        .find(|l| l.trim_start().starts_with("return ord === "))
        .expect("_List_sortWith's comparison");
    let names: Vec<&str> = test
        .split("ord === ")
        .skip(1)
        .map(|part| part.split(' ').next().unwrap())
        .collect();
    let [eq, lt] = names.as_slice() else {
        panic!("{test}")
    };
    for (name, number, other) in [(eq, 1, "{ $: 'EQ' }"), (lt, 0, "3")] {
        let declared = format!("var {name} = {number};");
        assert_eq!(source.matches(&declared).count(), 1, "{declared}");
        let changed = source.replacen(&declared, &format!("var {name} = {other};"), 1);
        let rewritten = elmbox_optimize::optimize(&changed).expect("still Elm's calls");
        assert!(!rewritten.sorts_read_orders_as_numbers, "{name} = {other}");
        assert!(rewritten.source.contains(test), "{name} = {other}");
    }
}
