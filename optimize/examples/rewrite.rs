//! Rewrites one compiled Elm file and prints the result:
//! `cargo run --release -p elmbox-optimize --example rewrite -- app.js > out.js`
//! (how many calls were made direct goes to stderr).

fn main() -> std::io::Result<()> {
    let path = std::env::args().nth(1).expect("usage: rewrite APP.js");
    let source = std::fs::read_to_string(&path)?;
    match elmbox_optimize::direct_calls(&source) {
        Some(rewritten) => {
            eprintln!("{path}: {} calls made direct", rewritten.direct_calls);
            print!("{}", rewritten.source);
        }
        None => {
            eprintln!("{path}: left as it is");
            print!("{source}");
        }
    }
    Ok(())
}
