//! The Lua scripts, one per writing operation, each behind the shared prelude (`src/lua/prelude.lua`,
//! which also documents their KEYS and ARGV), and how they are called: in a MULTI/EXEC with the plain
//! commands that move the big values (see the prelude), by `EVALSHA` first, since the body of a script is
//! sent once per server rather than with every call, and by `EVAL` when the server answers `NOSCRIPT`
//! (after a restart, a failover or `SCRIPT FLUSH`, and on each node of a cluster the first time), which
//! also caches it there for the next `EVALSHA`.

use redis::{ConnectionLike, ErrorKind, Pipeline, RedisResult, ServerErrorKind, Value};
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

    /// Runs the script with `keys` and `args` in one MULTI/EXEC, after the commands `before` queues and
    /// ahead of those `after` queues; returns how many commands went before the script, and every reply
    /// in order. The first key routes the whole transaction to its node in a cluster, so every command must
    /// use keys of the same hash tag.
    pub(crate) fn run(
        &self,
        con: &mut dyn ConnectionLike,
        keys: &[String],
        args: &[&[u8]],
        before: &dyn Fn(&mut Pipeline),
        after: &dyn Fn(&mut Pipeline),
    ) -> RedisResult<(usize, Vec<Value>)> {
        let mut queued_before = 0;
        let mut transaction = |command: &str, script: &str| {
            let mut pipe = redis::pipe();
            pipe.atomic();
            // A cluster connection finds the node of a transaction by parsing its first command, a copy
            // of it included: a small command first spares copying 20 MB of checkpoint for that.
            pipe.cmd("EXISTS").arg(&keys[0]);
            before(&mut pipe);
            queued_before = pipe.len();
            pipe.cmd(command).arg(script).arg(keys.len()).arg(keys);
            for arg in args {
                pipe.arg(*arg);
            }
            after(&mut pipe);
            pipe
        };
        // The commands queued with EVALSHA ran even when it found no script: running them again with
        // EVAL leaves the same result (they only write the incoming keys, or read).
        let values = match exec(con, &transaction("EVALSHA", &self.sha)) {
            Err(e) if e.kind() == ErrorKind::Server(ServerErrorKind::NoScript) => {
                exec(con, &transaction("EVAL", self.body))
            }
            other => other,
        }?;
        Ok((queued_before, values))
    }
}

/// Runs the atomic pipeline `transaction` (MULTI ... EXEC) and returns the replies of its commands.
///
/// `Pipeline::query` refuses cluster connections, which cannot pipeline commands in general; but a
/// cluster connection does send a MULTI/EXEC block whole to the node of its first command's key (and
/// follows redirections with it), which is all a namespace, under one hash tag, needs.
pub(crate) fn exec(
    con: &mut dyn ConnectionLike,
    transaction: &Pipeline,
) -> RedisResult<Vec<Value>> {
    let packed = transaction.get_packed_pipeline();
    // Skip the replies to MULTI and the QUEUED of each command; keep the one to EXEC.
    let mut replies = con.req_packed_commands(&packed, transaction.len() + 1, 1)?;
    match replies.pop() {
        Some(Value::Array(items)) => items.into_iter().map(Value::extract_error).collect(),
        Some(other) => match other.extract_error() {
            Err(e) => Err(e),
            Ok(_) => Err((
                ErrorKind::UnexpectedReturnType,
                "EXEC did not answer an array",
            )
                .into()),
        },
        None => Err((ErrorKind::UnexpectedReturnType, "no reply to EXEC").into()),
    }
}

pub(crate) struct Scripts {
    pub(crate) bind: Lua,
    pub(crate) claim: Lua,
    pub(crate) save_results: Lua,
    pub(crate) save_checkpoint: Lua,
    pub(crate) delete_namespace: Lua,
}

pub(crate) static SCRIPTS: LazyLock<Scripts> = LazyLock::new(|| Scripts {
    bind: Lua::new("bind", lua!("bind")),
    claim: Lua::new("claim", lua!("claim")),
    save_results: Lua::new("save_results", lua!("save_results")),
    save_checkpoint: Lua::new("save_checkpoint", lua!("save_checkpoint")),
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
