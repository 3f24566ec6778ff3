//! Routine shapes: a routine's input and view, the caller's list, and the routines attached to an alarm.

use alarm_domain::error::{ValidationError, codes};
use alarm_domain::ids::RoutineId;
use alarm_domain::model::{MAX_ROUTINE_ACTIONS, Routine, RoutineAction, RoutineName};
use poem_openapi::Object;
use serde::Deserialize;

/// A named, ordered list of actions a receiver runs when an alarm rings.
#[derive(Clone, Object, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RoutineInput {
    /// 1..=100 characters, e.g. "Morning".
    pub name: String,
    /// 1..=50 actions in the order they run, each 1..=200 characters, no
    /// two equal ignoring case (e.g. "Lights on", "Start the coffee").
    pub actions: Vec<String>,
    /// Whether it starts when an alarm it is attached to rings (default
    /// `true`).
    #[serde(default)]
    pub active: Option<bool>,
}

impl RoutineInput {
    /// The name, the actions and the flag; each error names its field
    /// (`actions[2]`).
    pub(crate) fn to_domain(
        &self,
    ) -> Result<(RoutineName, Vec<RoutineAction>, bool), ValidationError> {
        let name = RoutineName::parse(&self.name)?;
        // Counted before any action is parsed.
        if self.actions.is_empty() || self.actions.len() > MAX_ROUTINE_ACTIONS {
            return Err(ValidationError::new(
                "actions",
                codes::BAD_COUNT,
                format!(
                    "must hold 1..={MAX_ROUTINE_ACTIONS} actions, got {}",
                    self.actions.len()
                ),
            ));
        }
        let actions = self
            .actions
            .iter()
            .enumerate()
            .map(|(i, a)| {
                RoutineAction::parse(a).map_err(|e| {
                    ValidationError::new(format!("actions[{i}]"), e.code(), e.message().to_owned())
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok((name, actions, self.active.unwrap_or(true)))
    }
}

/// A routine.
#[derive(Clone, Object)]
pub struct RoutineView {
    /// Id (UUID v7).
    pub id: String,
    /// Its name.
    pub name: String,
    /// Its actions, in order.
    pub actions: Vec<String>,
    /// Whether it starts when an alarm it is attached to rings.
    pub active: bool,
}

impl RoutineView {
    /// The view of `r`.
    pub fn new(r: &Routine) -> Self {
        Self {
            id: r.id().to_string(),
            name: r.name().as_str().to_owned(),
            actions: r.actions().iter().map(|a| a.as_str().to_owned()).collect(),
            active: r.active(),
        }
    }
}

/// Routines: the caller's (by id, at most 100, so no pages), or an
/// alarm's (in the order they start).
#[derive(Clone, Object)]
pub struct RoutineList {
    /// The routines.
    pub items: Vec<RoutineView>,
}

/// The routines to attach to an alarm, replacing those attached.
#[derive(Clone, Object, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AlarmRoutinesInput {
    /// At most 10 of the caller's routine ids, in the order they start
    /// when the alarm rings, none twice; `[]` detaches every routine.
    pub routine_ids: Vec<String>,
}

impl AlarmRoutinesInput {
    /// The ids; a malformed one is `routine_ids[i]` / `unknown-value`, as
    /// an id of nobody's routine is. The list's length is the service's to
    /// judge, after this parse (bounded by the 1 MiB body): a list that is
    /// both too long and holds a malformed id is refused for the id.
    pub(crate) fn to_domain(&self) -> Result<Vec<RoutineId>, ValidationError> {
        self.routine_ids
            .iter()
            .enumerate()
            .map(|(i, raw)| {
                raw.parse::<RoutineId>().map_err(|_| {
                    ValidationError::new(
                        format!("routine_ids[{i}]"),
                        codes::UNKNOWN_VALUE,
                        "not one of your routines",
                    )
                })
            })
            .collect()
    }
}
