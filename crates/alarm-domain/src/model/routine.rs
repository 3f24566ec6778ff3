//! Routines: a named, ordered list of distinct actions a user runs together.

use crate::error::{ValidationError, check_text, codes};
use crate::ids::{RoutineId, UserId};

/// A routine's name: 1..=100 characters.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RoutineName(String);

impl RoutineName {
    /// # Errors
    /// `name` with `empty`, `too-long` or `invalid-format`.
    pub fn parse(value: &str) -> Result<Self, ValidationError> {
        check_text("name", value, 1, 100).map(Self)
    }
    /// The trimmed name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// One step of a routine: 1..=200 characters.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RoutineAction(String);

impl RoutineAction {
    /// # Errors
    /// `action` with `empty`, `too-long` or `invalid-format`.
    pub fn parse(value: &str) -> Result<Self, ValidationError> {
        check_text("action", value, 1, 200).map(Self)
    }
    /// The trimmed text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The most actions one routine may hold.
pub const MAX_ROUTINE_ACTIONS: usize = 50;

/// A user's routine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Routine {
    id: RoutineId,
    owner: UserId,
    name: RoutineName,
    actions: Vec<RoutineAction>,
    active: bool,
}

impl Routine {
    /// Validates 1..=50 actions, no two equal (ignoring case).
    ///
    /// # Errors
    /// `actions` with `bad-count`, `actions[i]` with `duplicate`.
    pub fn new(
        id: RoutineId,
        owner: UserId,
        name: RoutineName,
        actions: Vec<RoutineAction>,
        active: bool,
    ) -> Result<Self, ValidationError> {
        if actions.is_empty() || actions.len() > MAX_ROUTINE_ACTIONS {
            return Err(ValidationError::new(
                "actions",
                codes::BAD_COUNT,
                format!(
                    "must hold 1..={MAX_ROUTINE_ACTIONS} actions, got {}",
                    actions.len()
                ),
            ));
        }
        for (i, a) in actions.iter().enumerate() {
            if actions[..i]
                .iter()
                .any(|b| b.0.to_lowercase() == a.0.to_lowercase())
            {
                return Err(ValidationError::new(
                    format!("actions[{i}]"),
                    codes::DUPLICATE,
                    format!("`{}` is listed twice", a.0),
                ));
            }
        }
        Ok(Self {
            id,
            owner,
            name,
            actions,
            active,
        })
    }
    /// The id.
    pub fn id(&self) -> RoutineId {
        self.id
    }
    /// The owner.
    pub fn owner(&self) -> UserId {
        self.owner
    }
    /// The name.
    pub fn name(&self) -> &RoutineName {
        &self.name
    }
    /// The actions, in order.
    pub fn actions(&self) -> &[RoutineAction] {
        &self.actions
    }
    /// Whether it is active.
    pub fn active(&self) -> bool {
        self.active
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn actions_are_non_empty_and_unique() {
        let a = |s: &str| RoutineAction::parse(s).unwrap();
        let name = RoutineName::parse("Morning").unwrap();
        let (id, owner) = (RoutineId::generate(), UserId::generate());
        assert!(
            Routine::new(
                id,
                owner,
                name.clone(),
                vec![a("Lights on"), a("Coffee")],
                true
            )
            .is_ok()
        );
        let dup = Routine::new(
            id,
            owner,
            name.clone(),
            vec![a("Coffee"), a("coffee")],
            true,
        )
        .unwrap_err();
        assert_eq!((dup.field(), dup.code()), ("actions[1]", codes::DUPLICATE));
        assert_eq!(
            Routine::new(id, owner, name, vec![], true)
                .unwrap_err()
                .code(),
            codes::BAD_COUNT
        );
    }
}
