//! The SQL of sign-in attempt reservations (`login_failures`): one conditional upsert per
//! key decides, under the row lock, whether an attempt is admitted, so concurrent attempts
//! cannot all pass a check made before any of them counts.

/// The delay owed after the key's admitted attempts (`$4` free, first delay `$5` doubling,
/// capped at `$6` seconds), on the stored row.
macro_rules! attempt_delay {
    () => {
        "(CASE WHEN login_failures.failures < $4 THEN 0 \
               WHEN login_failures.failures - $4 >= 20 THEN $6 \
               WHEN ($5 << CAST(login_failures.failures - $4 AS INTEGER)) > $6 THEN $6 \
               ELSE ($5 << CAST(login_failures.failures - $4 AS INTEGER)) END)"
    };
}

/// Whether the attempt is admitted: the window lapsed, or fewer than `$4` were admitted, or
/// the delay since the last admitted one has passed and (`$7`, a solved proof of work, or)
/// no refused attempt has pushed `blocked_until` past now.
macro_rules! attempt_admitted {
    () => {
        concat!(
            "(login_failures.window_start < $3 OR login_failures.failures < $4 OR \
              ($2 >= login_failures.last_failure_at + ",
            attempt_delay!(),
            " AND ($7 = 1 OR $2 >= login_failures.blocked_until)))"
        )
    };
}

/// One attempt on key `$1` at `$2`: admitted ones count, refused ones without a proof of
/// work push `blocked_until` out by the current delay. Every `SET` expression reads the row
/// as it was, so the decision is made once, under the row lock, for both backends.
pub(crate) const RESERVE_ATTEMPT: &str = concat!(
    "INSERT INTO login_failures (key, failures, window_start, last_failure_at, blocked_until, last_admitted) \
     VALUES ($1, 1, $2, $2, 0, 1) ON CONFLICT (key) DO UPDATE SET \
       failures = CASE WHEN login_failures.window_start < $3 THEN 1 WHEN ",
    attempt_admitted!(),
    " THEN login_failures.failures + 1 ELSE login_failures.failures END, \
       window_start = CASE WHEN login_failures.window_start < $3 THEN $2 ELSE login_failures.window_start END, \
       last_failure_at = CASE WHEN ",
    attempt_admitted!(),
    " THEN $2 ELSE login_failures.last_failure_at END, \
       blocked_until = CASE WHEN login_failures.window_start < $3 THEN 0 WHEN ",
    attempt_admitted!(),
    " OR $7 = 1 THEN login_failures.blocked_until ELSE $2 + ",
    attempt_delay!(),
    " END, \
       last_admitted = CASE WHEN ",
    attempt_admitted!(),
    " THEN 1 ELSE 0 END \
     RETURNING failures, last_failure_at, blocked_until, last_admitted"
);
