//! CronJob schedules, as upstream reads them (robfig/cron's standard parser): five fields
//! (minute hour day-of-month month day-of-week, names like MON and JAN allowed; day-of-month and
//! day-of-week restrict with OR when both are set), the `@yearly`/`@annually`/`@monthly`/
//! `@weekly`/`@daily`/`@midnight`/`@hourly` macros, `@every <duration>`, and a `CRON_TZ=` or
//! `TZ=` prefix. Times are evaluated in the CronJob's `timeZone` (UTC when unset). Parsing and
//! matching come from the `croner` crate; this module adds upstream's rules around it and the
//! "which run is due" arithmetic of the CronJob controller. Pure: the caller passes the clock.

use std::time::Duration;

use croner::{
    Cron,
    parser::{CronParser, Seconds, Year},
};
use jiff::{Timestamp, ToSpan, Zoned, tz::TimeZone};

/// How many missed runs are counted before giving up counting (upstream warns past 100).
pub const MANY_MISSED: usize = 100;

/// Why a schedule or time zone is refused; the message is what a user reads after the field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScheduleError {
    /// `spec.schedule` does not parse.
    #[error("{0}")]
    Schedule(String),
    /// `spec.timeZone` (or a `CRON_TZ=` prefix) names no known zone.
    #[error("unknown time zone {0}")]
    TimeZone(String),
}

/// When runs happen.
#[derive(Debug, Clone)]
enum When {
    Cron(Box<Cron>),
    Every(Duration),
}

/// A parsed schedule in its time zone.
#[derive(Debug, Clone)]
pub struct Schedule {
    when: When,
    zone: TimeZone,
}

impl Schedule {
    /// Parse `schedule` for a CronJob whose `spec.timeZone` is `time_zone`.
    pub fn parse(schedule: &str, time_zone: Option<&str>) -> Result<Self, ScheduleError> {
        let (prefix_zone, rest) = split_tz_prefix(schedule.trim());
        let zone_name = match (prefix_zone, time_zone) {
            (Some(_), Some(_)) => {
                return Err(ScheduleError::Schedule(
                    "cannot use both timeZone field and TZ or CRON_TZ in schedule".into(),
                ));
            }
            (Some(z), None) | (None, Some(z)) => Some(z),
            (None, None) => None,
        };
        let zone = match zone_name {
            None => TimeZone::UTC,
            Some(name) => TimeZone::get(name).map_err(|_| ScheduleError::TimeZone(name.to_string()))?,
        };
        let when = if let Some(every) = rest.strip_prefix("@every ") {
            When::Every(parse_every(every.trim())?)
        } else {
            When::Cron(Box::new(parse_cron(rest)?))
        };
        Ok(Self { when, zone })
    }

    /// The first run strictly after `t`.
    pub fn next_after(&self, t: Timestamp) -> Option<Timestamp> {
        match &self.when {
            When::Cron(cron) => {
                cron.find_next_occurrence(&t.to_zoned(self.zone.clone()), false).ok().map(|z| z.timestamp())
            }
            // As robfig/cron: the delay from `t`, rounded down to the second.
            When::Every(d) => {
                let whole = Timestamp::from_second(t.as_second()).ok()?;
                whole.checked_add(jiff::SignedDuration::try_from(*d).ok()?).ok()
            }
        }
    }

    /// The most recent run in `(earliest, now]` and how many runs in that window were not
    /// started (at most [`MANY_MISSED`] + 1 are counted), or None when none is due.
    pub fn most_recent(&self, earliest: Timestamp, now: Timestamp) -> Option<(Timestamp, usize)> {
        let first = self.next_after(earliest).filter(|t| *t <= now)?;
        let mut latest = first;
        let mut count = 1;
        while count <= MANY_MISSED {
            match self.next_after(latest) {
                Some(t) if t <= now => {
                    latest = t;
                    count += 1;
                }
                _ => return Some((latest, count)),
            }
        }
        // Too many to walk: jump to the last one before `now`.
        Some((self.last_at_or_before(latest, now).unwrap_or(latest), count))
    }

    fn last_at_or_before(&self, from: Timestamp, now: Timestamp) -> Option<Timestamp> {
        match &self.when {
            When::Cron(cron) => {
                let now = now.to_zoned(self.zone.clone());
                cron.find_previous_occurrence(&now, true).ok().map(|z: Zoned| z.timestamp())
            }
            When::Every(d) => {
                let step = d.as_secs().max(1) as i64;
                let steps = (now.as_second() - from.as_second()) / step;
                from.checked_add((steps * step).seconds()).ok()
            }
        }
    }

    /// `t` in the schedule's zone, RFC 3339 (the `cronjob-scheduled-timestamp` annotation).
    pub fn format_in_zone(&self, t: Timestamp) -> String {
        let zoned = t.to_zoned(self.zone.clone());
        zoned.strftime("%Y-%m-%dT%H:%M:%S%:z").to_string().replace("+00:00", "Z")
    }
}

/// `CRON_TZ=Europe/Berlin 0 9 * * *` → (Some("Europe/Berlin"), "0 9 * * *").
fn split_tz_prefix(schedule: &str) -> (Option<&str>, &str) {
    for prefix in ["CRON_TZ=", "TZ="] {
        if let Some(rest) = schedule.strip_prefix(prefix) {
            let (zone, rest) = rest.split_once(char::is_whitespace).unwrap_or((rest, ""));
            return (Some(zone), rest.trim());
        }
    }
    (None, schedule)
}

fn parse_cron(pattern: &str) -> Result<Cron, ScheduleError> {
    let pattern = match pattern.to_ascii_lowercase().as_str() {
        // robfig/cron knows @midnight; croner does not.
        "@midnight" => "@daily".to_string(),
        _ => pattern.to_string(),
    };
    if !pattern.starts_with('@') {
        let fields = pattern.split_whitespace().count();
        if fields != 5 {
            return Err(ScheduleError::Schedule(format!(
                "expected exactly 5 fields, found {fields}: {pattern}"
            )));
        }
        // croner also takes Quartz extensions (L, W, #) that upstream refuses.
        let names = [
            "JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC", "SUN", "MON",
            "TUE", "WED", "THU", "FRI", "SAT",
        ];
        let mut bare = pattern.to_ascii_uppercase();
        for name in names {
            bare = bare.replace(name, "");
        }
        if bare.chars().any(|c| c.is_ascii_alphabetic() || c == '#') {
            return Err(ScheduleError::Schedule(format!(
                "unsupported characters in {pattern:?}: only numbers, month and weekday names, * , - / and ? are allowed"
            )));
        }
    }
    CronParser::builder()
        .seconds(Seconds::Disallowed)
        .year(Year::Disallowed)
        .build()
        .parse(&pattern)
        .map_err(|e| ScheduleError::Schedule(format!("{e}")))
}

fn parse_every(text: &str) -> Result<Duration, ScheduleError> {
    let bad = || ScheduleError::Schedule(format!("failed to parse duration @every {text}"));
    let d: jiff::SignedDuration = text.parse().map_err(|_| bad())?;
    let d = Duration::try_from(d).map_err(|_| bad())?;
    if d < Duration::from_secs(1) {
        return Err(bad());
    }
    Ok(d)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(s: &str) -> Timestamp {
        s.parse().expect("timestamp")
    }

    #[test]
    fn five_fields_macros_and_names() {
        let every_minute = Schedule::parse("*/1 * * * *", None).expect("parses");
        assert_eq!(every_minute.next_after(ts("2026-01-01T10:00:30Z")), Some(ts("2026-01-01T10:01:00Z")));
        let hourly = Schedule::parse("@hourly", None).expect("parses");
        assert_eq!(hourly.next_after(ts("2026-01-01T10:00:00Z")), Some(ts("2026-01-01T11:00:00Z")));
        let midnight = Schedule::parse("@midnight", None).expect("parses");
        assert_eq!(midnight.next_after(ts("2026-01-01T10:00:00Z")), Some(ts("2026-01-02T00:00:00Z")));
        let monday = Schedule::parse("30 9 * JAN MON", None).expect("parses");
        assert_eq!(monday.next_after(ts("2026-01-01T00:00:00Z")), Some(ts("2026-01-05T09:30:00Z")));
        let every = Schedule::parse("@every 1h30m", None).expect("parses");
        assert_eq!(every.next_after(ts("2026-01-01T00:00:00.5Z")), Some(ts("2026-01-01T01:30:00Z")));
    }

    #[test]
    fn day_of_month_and_day_of_week_are_ored_as_in_vixie_cron() {
        // The 13th, or any Friday: 2026-02-06 is a Friday before the 13th.
        let s = Schedule::parse("0 0 13 * FRI", None).expect("parses");
        assert_eq!(s.next_after(ts("2026-02-01T00:00:00Z")), Some(ts("2026-02-06T00:00:00Z")));
    }

    #[test]
    fn bad_schedules_say_why() {
        for bad in
            ["* * *", "* * * * * *", "61 * * * *", "0 0 L * *", "0 0 * * 5#2", "", "@every 0s", "@often"]
        {
            let err = Schedule::parse(bad, None).expect_err(bad);
            assert!(matches!(err, ScheduleError::Schedule(_)), "{bad}: {err:?}");
        }
        assert_eq!(
            Schedule::parse("* * *", None).expect_err("fields").to_string(),
            "expected exactly 5 fields, found 3: * * *"
        );
        assert_eq!(
            Schedule::parse("0 * * * *", Some("Mars/Olympus")).expect_err("zone"),
            ScheduleError::TimeZone("Mars/Olympus".into())
        );
        assert!(Schedule::parse("CRON_TZ=UTC 0 * * * *", Some("UTC")).is_err());
    }

    #[test]
    fn time_zones_shift_runs_and_follow_daylight_saving() {
        let berlin = Schedule::parse("0 9 * * *", Some("Europe/Berlin")).expect("parses");
        // Winter: UTC+1; summer: UTC+2.
        assert_eq!(berlin.next_after(ts("2026-01-10T00:00:00Z")), Some(ts("2026-01-10T08:00:00Z")));
        assert_eq!(berlin.next_after(ts("2026-07-10T00:00:00Z")), Some(ts("2026-07-10T07:00:00Z")));
        let prefixed = Schedule::parse("CRON_TZ=America/New_York 0 9 * * *", None).expect("parses");
        assert_eq!(prefixed.next_after(ts("2026-01-10T00:00:00Z")), Some(ts("2026-01-10T14:00:00Z")));
        assert_eq!(berlin.format_in_zone(ts("2026-01-10T08:00:00Z")), "2026-01-10T09:00:00+01:00");
        let utc = Schedule::parse("0 9 * * *", None).expect("parses");
        assert_eq!(utc.format_in_zone(ts("2026-01-10T09:00:00Z")), "2026-01-10T09:00:00Z");
    }

    #[test]
    fn after_downtime_only_the_most_recent_missed_run_is_due() {
        let s = Schedule::parse("*/5 * * * *", None).expect("parses");
        // Down from 10:02 to 10:31: runs at 10:05..10:30 were missed; 10:30 is the one due.
        let due = s.most_recent(ts("2026-01-01T10:02:00Z"), ts("2026-01-01T10:31:10Z"));
        assert_eq!(due, Some((ts("2026-01-01T10:30:00Z"), 6)));
        // Nothing due between two runs.
        assert_eq!(s.most_recent(ts("2026-01-01T10:30:00Z"), ts("2026-01-01T10:34:59Z")), None);
        // The run at exactly `now` is due; the one at `earliest` was already handled.
        let at = s.most_recent(ts("2026-01-01T10:30:00Z"), ts("2026-01-01T10:35:00Z"));
        assert_eq!(at, Some((ts("2026-01-01T10:35:00Z"), 1)));
    }

    #[test]
    fn a_long_downtime_is_counted_only_up_to_the_warning_threshold() {
        let s = Schedule::parse("* * * * *", None).expect("parses");
        let (latest, count) =
            s.most_recent(ts("2026-01-01T00:00:00Z"), ts("2026-01-03T12:00:30Z")).expect("due");
        assert_eq!((latest, count), (ts("2026-01-03T12:00:00Z"), MANY_MISSED + 1));
        let every = Schedule::parse("@every 10m", None).expect("parses");
        let (latest, count) =
            every.most_recent(ts("2026-01-01T00:00:00Z"), ts("2026-01-10T00:05:00Z")).expect("due");
        assert_eq!((latest, count), (ts("2026-01-10T00:00:00Z"), MANY_MISSED + 1));
    }
}
