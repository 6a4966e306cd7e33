//! Rewrites one compiled Elm file and prints the result:
//! `cargo run --release -p elmbox-optimize --example rewrite -- app.js > out.js`
//! (what was rewritten goes to stderr).

fn main() -> std::io::Result<()> {
    let path = std::env::args().nth(1).expect("usage: rewrite APP.js");
    let source = std::fs::read_to_string(&path)?;
    match elmbox_optimize::optimize(&source) {
        Some(rewritten) => {
            eprintln!(
                "{path}: {} calls made direct; outgoing ports {}",
                rewritten.direct_calls,
                match rewritten.outgoing_ports_awake {
                    true => "take each batch at once",
                    false => "left as they were",
                }
            );
            print!("{}", rewritten.source);
        }
        None => {
            eprintln!("{path}: left as it is");
            print!("{source}");
        }
    }
    Ok(())
}
