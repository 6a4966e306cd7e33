//! `elmbox serve` against the Node.js server a user would write instead
//! (issue 26): `bench/peers/node-server.js`, Node's http module hosting the
//! same counter, each answer released after an fdatasync of the log line of
//! its event, with group commit. Both under the same `oha` load, in turn
//! (elmbox, Node, elmbox, Node, ...), at 16 and 64 connections; the ratio
//! of each pair, median and spread.

use std::fmt::Write as _;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use anyhow::{bail, Context};

use crate::serve::{load, oha, scratch, Served};
use crate::{counter, spread};

/// Pairs of runs per connection count.
const ROUNDS: usize = 3;

/// The Node.js peer, running; killed when dropped.
struct NodePeer {
    child: Child,
    url: String,
    log: PathBuf,
}

impl NodePeer {
    fn start(root: &Path) -> anyhow::Result<NodePeer> {
        let log = scratch("node-peer-log");
        let mut child = Command::new("node")
            .arg(root.join("bench/peers/node-server.js"))
            .arg(counter(root).0)
            .arg(&log)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .context("starting node (Node.js 20, as `make bench` finds it)")?;
        let mut line = String::new();
        BufReader::new(child.stdout.take().expect("piped")).read_line(&mut line)?;
        let Some(url) = line.trim().strip_prefix("listening on ") else {
            bail!("the Node.js peer did not start: {line:?}");
        };
        Ok(NodePeer {
            url: url.to_string(),
            child,
            log,
        })
    }
}

impl Drop for NodePeer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_file(&self.log);
    }
}

pub fn section(root: &Path) -> anyhow::Result<String> {
    let mut doc = String::new();
    let Some(oha) = oha(root) else {
        writeln!(doc, "Skipped: no load generator at target/tools/oha.")?;
        return Ok(doc);
    };
    let (path, kind) = counter(root);
    let js = std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
    let state = scratch("node-peer-elmbox");
    let mut served = Served::start_on(root, state.as_os_str(), &[])?;
    served.state = Some(state);
    served.deploy("counter", &js)?;
    let node = NodePeer::start(root)?;
    let elmbox_url = format!("{}/apps/counter/events", served.url);
    let node_url = format!("{}/apps/counter/events", node.url);
    writeln!(
        doc,
        "`elmbox serve` (the counter as {kind}, durable: SQLite, WAL, `synchronous=FULL`, group \
         commit) against `bench/peers/node-server.js` (Node.js's http module hosting the \
         same counter's JavaScript, each answer released after an `fdatasync` of the file \
         its event's line was appended to, group commit), both on loopback under `oha -m \
         POST -d click`, taking turns, {ROUNDS} pairs per row; requests/s of each, median \
         (min-max), and the ratio elmbox/Node of each pair. Goal (issue 26): at least 1.3×. \
         *CPU per request* is the CPU time (user + system, every thread) of the server and \
         of oha per answered request, medians: with oha on the same 2 cores, 2 s / (server \
         + oha) is the most requests/s any scheduling could give.\n"
    )?;
    writeln!(
        doc,
        "| connections | elmbox requests/s | Node.js requests/s | elmbox / Node \
         | CPU per request: elmbox + oha | Node.js + oha |\n|---:|---:|---:|---:|---:|---:|"
    )?;
    for connections in [16, 64] {
        let (mut ours, mut theirs, mut ratios) = (Vec::new(), Vec::new(), Vec::new());
        // CPU per request, µs: [elmbox, its oha, Node.js, its oha].
        let mut cpu: [Vec<f64>; 4] = Default::default();
        for _ in 0..ROUNDS {
            let a = load(&oha, served.child.id(), connections, &elmbox_url, false)?;
            let b = load(&oha, node.child.id(), connections, &node_url, false)?;
            ratios.push(a.requests_per_s / b.requests_per_s);
            for (column, us) in
                cpu.iter_mut()
                    .zip([a.server_cpu_us, a.oha_cpu_us, b.server_cpu_us, b.oha_cpu_us])
            {
                column.push(us);
            }
            ours.push(a.requests_per_s);
            theirs.push(b.requests_per_s);
        }
        let (o, o_lo, o_hi) = spread(ours);
        let (t, t_lo, t_hi) = spread(theirs);
        let (r, r_lo, r_hi) = spread(ratios);
        let [e_cpu, e_oha, n_cpu, n_oha] = cpu.map(|c| spread(c).0);
        writeln!(
            doc,
            "| {connections} | {o:.0} ({o_lo:.0}-{o_hi:.0}) | {t:.0} ({t_lo:.0}-{t_hi:.0}) \
             | {r:.2}× ({r_lo:.2}-{r_hi:.2}) | {e_cpu:.1} + {e_oha:.1} µs | {n_cpu:.1} + {n_oha:.1} µs |"
        )?;
    }
    Ok(doc)
}
