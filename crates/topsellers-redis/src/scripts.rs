//! The Lua scripts, one per operation, each behind the shared prelude (`src/lua/prelude.lua`, which also
//! documents their KEYS and ARGV), and how they are called: `EVALSHA` first, since the body of a script
//! is sent once per server rather than with every call, and `EVAL` when the server answers `NOSCRIPT`
//! (after a restart, a failover or `SCRIPT FLUSH`, and on each node of a cluster the first time), which
//! also caches it there for the next `EVALSHA`.

use redis::{ConnectionLike, ErrorKind, RedisResult, ServerErrorKind, Value};
use std::sync::LazyLock;

macro_rules! lua {
    ($name:literal) => {
        concat!(
            include_str!("lua/prelude.lua"),
            "\n",
            include_str!(concat!("lua/", $name, ".lua"))
        )
    };
}

/// One script: its name (for errors), body and SHA-1.
pub(crate) struct Lua {
    pub(crate) name: &'static str,
    body: &'static str,
    sha: String,
}

impl Lua {
    fn new(name: &'static str, body: &'static str) -> Lua {
        Lua {
            name,
            body,
            sha: redis::Script::new(body).get_hash().to_string(),
        }
    }

    /// Runs the script with `keys` and `args`; the keys also route the call to its node in a cluster.
    pub(crate) fn run(
        &self,
        con: &mut dyn ConnectionLike,
        keys: &[String],
        args: &[&[u8]],
    ) -> RedisResult<Value> {
        let call = |command: &str, script: &str| {
            let mut cmd = redis::cmd(command);
            cmd.arg(script).arg(keys.len()).arg(keys);
            for arg in args {
                cmd.arg(*arg);
            }
            cmd
        };
        match call("EVALSHA", &self.sha).query(con) {
            Err(e) if e.kind() == ErrorKind::Server(ServerErrorKind::NoScript) => {
                call("EVAL", self.body).query(con)
            }
            other => other,
        }
    }
}

pub(crate) struct Scripts {
    pub(crate) bind: Lua,
    pub(crate) claim: Lua,
    pub(crate) save_results: Lua,
    pub(crate) save_checkpoint: Lua,
    pub(crate) load_results: Lua,
    pub(crate) delete_namespace: Lua,
}

pub(crate) static SCRIPTS: LazyLock<Scripts> = LazyLock::new(|| Scripts {
    bind: Lua::new("bind", lua!("bind")),
    claim: Lua::new("claim", lua!("claim")),
    save_results: Lua::new("save_results", lua!("save_results")),
    save_checkpoint: Lua::new("save_checkpoint", lua!("save_checkpoint")),
    load_results: Lua::new("load_results", lua!("load_results")),
    delete_namespace: Lua::new("delete_namespace", lua!("delete_namespace")),
});

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_script_carries_the_prelude_and_its_own_body() {
        let s = &*SCRIPTS;
        for lua in [
            &s.bind,
            &s.claim,
            &s.save_results,
            &s.save_checkpoint,
            &s.load_results,
            &s.delete_namespace,
        ] {
            assert!(
                lua.body.contains("local function keep_alive"),
                "{}",
                lua.name
            );
            assert!(
                lua.body.contains(&format!("-- {}", lua.name)),
                "{}",
                lua.name
            );
            assert_eq!(lua.sha.len(), 40);
        }
    }
}
