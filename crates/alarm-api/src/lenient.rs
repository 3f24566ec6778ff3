//! A query parameter whose parse error waits for the handler, so that an owner-scoped operation answers 404 for another user's alarm before judging its parameters.

use std::borrow::Cow;

use poem_openapi::registry::{MetaSchemaRef, Registry};
use poem_openapi::types::{ParseFromParameter, ParseResult, Type};

use crate::problem::{ApiError, Problem};

/// `T` as the spec shows it, or why the client's text was not a `T`.
#[derive(Debug, Clone)]
pub struct Lenient<T>(Result<T, String>);

impl<T> Lenient<T> {
    /// The value, or a 400 `validation` problem naming `field`.
    ///
    /// # Errors
    /// When the parameter did not parse.
    pub fn value(self, field: &str) -> Result<T, ApiError> {
        self.0
            .map_err(|reason| Problem::invalid(field, reason).with_status(400).into())
    }
}

impl<T: Type> Type for Lenient<T> {
    const IS_REQUIRED: bool = T::IS_REQUIRED;
    type RawValueType = T::RawValueType;
    type RawElementValueType = T::RawElementValueType;

    fn name() -> Cow<'static, str> {
        T::name()
    }

    fn schema_ref() -> MetaSchemaRef {
        T::schema_ref()
    }

    fn register(registry: &mut Registry) {
        T::register(registry);
    }

    fn as_raw_value(&self) -> Option<&Self::RawValueType> {
        self.0.as_ref().ok().and_then(Type::as_raw_value)
    }

    fn raw_element_iter<'a>(
        &'a self,
    ) -> Box<dyn Iterator<Item = &'a Self::RawElementValueType> + 'a> {
        match &self.0 {
            Ok(v) => v.raw_element_iter(),
            Err(_) => Box::new(std::iter::empty()),
        }
    }
}

impl<T: ParseFromParameter> ParseFromParameter for Lenient<T> {
    fn parse_from_parameter(value: &str) -> ParseResult<Self> {
        Ok(Lenient(
            T::parse_from_parameter(value).map_err(poem_openapi::types::ParseError::into_message),
        ))
    }
}

/// An optional lenient parameter's value.
///
/// # Errors
/// When it was given and did not parse.
pub fn optional<T>(p: Option<Lenient<T>>, field: &str) -> Result<Option<T>, ApiError> {
    p.map(|l| l.value(field)).transpose()
}
