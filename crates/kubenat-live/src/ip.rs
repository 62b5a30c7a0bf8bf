//! iproute2's `ip`, for the namespace's links, rules and routes: the same commands an
//! administrator would type to inspect or undo them, and one `ip -batch` for many routes.

use std::io::{self, Write as _};
use std::process::{Command, Stdio};

/// Runs `ip ARGS`; its standard output, or an error quoting the command and `ip`'s message.
pub fn ip(args: &[&str]) -> io::Result<String> {
    let output = Command::new("ip")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| io::Error::new(e.kind(), format!("cannot run `ip`: {e}")))?;
    finished(&format!("ip {}", args.join(" ")), output)
}

/// Runs every line of `commands` (`route add …`) through one `ip -batch -`.
pub fn batch(commands: &[String]) -> io::Result<()> {
    if commands.is_empty() {
        return Ok(());
    }
    let mut child = Command::new("ip")
        .args(["-batch", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| io::Error::new(e.kind(), format!("cannot run `ip`: {e}")))?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin.write_all(commands.join("\n").as_bytes())?;
    }
    finished("ip -batch -", child.wait_with_output()?).map(drop)
}

fn finished(command: &str, output: std::process::Output) -> io::Result<String> {
    if output.status.success() {
        return Ok(String::from_utf8_lossy(&output.stdout).into_owned());
    }
    Err(io::Error::other(format!(
        "`{command}` failed: {}",
        String::from_utf8_lossy(&output.stderr).trim()
    )))
}

/// A network device of the namespace.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Link {
    pub name: String,
    pub mtu: u32,
}

/// The namespace's devices, from `ip -o link show`.
pub fn links() -> io::Result<Vec<Link>> {
    Ok(parse_links(&ip(&["-o", "link", "show"])?))
}

/// Reads `ip -o link show` lines: `2: eth0@if3: <BROADCAST,UP> mtu 1500 qdisc …`.
fn parse_links(text: &str) -> Vec<Link> {
    text.lines()
        .filter_map(|line| {
            let mut fields = line.split_whitespace();
            let name = fields.nth(1)?.trim_end_matches(':');
            let name = name.split('@').next()?;
            let mtu = fields
                .skip_while(|&f| f != "mtu")
                .nth(1)
                .and_then(|m| m.parse().ok())?;
            Some(Link {
                name: name.to_string(),
                mtu,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_lose_their_peer_suffix() {
        let text = "1: lo: <LOOPBACK,UP,LOWER_UP> mtu 65536 qdisc noqueue state UNKNOWN\\    link/loopback\n\
                    7: veth-a@if6: <BROADCAST,MULTICAST,UP> mtu 1500 qdisc noqueue state UP\n\
                    garbage\n";
        assert_eq!(
            parse_links(text),
            vec![
                Link {
                    name: "lo".into(),
                    mtu: 65536
                },
                Link {
                    name: "veth-a".into(),
                    mtu: 1500
                },
            ]
        );
    }
}
