//! Account values: email, display name, role, country and state.

use std::fmt;

use crate::error::{ValidationError, check_bidi, check_text, codes, nfc};
use crate::ids::UserId;
use crate::tz::TimeZoneName;

/// An email address. Compared case-insensitively: two accounts cannot differ
/// only by case, and a login with other casing finds the same account.
#[derive(Clone)]
pub struct Email {
    original: String,
    key: String,
}

impl Email {
    /// Validates an address: at most 254 characters, one `@`, a local part of
    /// 1..=64 characters, a dotted domain of letters, digits and hyphens.
    ///
    /// # Errors
    /// `email` with `empty`, `too-long` or `invalid-format`.
    pub fn parse(value: &str) -> Result<Self, ValidationError> {
        const FIELD: &str = "email";
        let value = value.trim();
        // Bounded before anything else looks at it (a login may send megabytes).
        if value.len() > 4 * 254 {
            return Err(ValidationError::new(
                FIELD,
                codes::TOO_LONG,
                "must have at most 254 characters",
            ));
        }
        check_bidi(FIELD, value)?;
        let normalized = nfc(value);
        let value = normalized.as_str();
        if value.is_empty() {
            return Err(ValidationError::new(
                FIELD,
                codes::EMPTY,
                "must not be empty",
            ));
        }
        if value.chars().count() > 254 {
            return Err(ValidationError::new(
                FIELD,
                codes::TOO_LONG,
                "must have at most 254 characters",
            ));
        }
        let invalid =
            |why: &str| ValidationError::new(FIELD, codes::INVALID_FORMAT, why.to_owned());
        let (local, domain) = value
            .split_once('@')
            .ok_or_else(|| invalid("must contain an @"))?;
        if domain.contains('@') {
            return Err(invalid("must contain exactly one @"));
        }
        if local.is_empty() || local.len() > 64 {
            return Err(invalid("the part before @ must have 1 to 64 characters"));
        }
        if local
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || "()<>,;:\\\"[]".contains(c))
            || local.starts_with('.')
            || local.ends_with('.')
            || local.contains("..")
        {
            return Err(invalid(
                "the part before @ has a character or dot that is not allowed",
            ));
        }
        let labels: Vec<&str> = domain.split('.').collect();
        if labels.len() < 2 {
            return Err(invalid("the domain must contain a dot"));
        }
        for label in &labels {
            let ok = !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label.chars().all(|c| c.is_alphanumeric() || c == '-');
            if !ok {
                return Err(invalid("the domain has an empty or malformed label"));
            }
        }
        Ok(Self {
            original: value.to_owned(),
            key: value.to_lowercase(),
        })
    }

    /// The address as the user typed it.
    pub fn as_str(&self) -> &str {
        &self.original
    }

    /// The lower-cased form that uniqueness and look-ups use.
    pub fn key(&self) -> &str {
        &self.key
    }
}

impl PartialEq for Email {
    fn eq(&self, other: &Self) -> bool {
        self.key == other.key
    }
}
impl Eq for Email {}

impl std::hash::Hash for Email {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.key.hash(state);
    }
}

impl fmt::Debug for Email {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Email({})", self.original)
    }
}

impl fmt::Display for Email {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.original)
    }
}

/// The key a login attempt is counted under: the address as typed,
/// trimmed, in NFC and lower case (what [`Email`] compares by), whether or
/// not it is a valid address. The caller bounds its length first.
pub fn login_key(value: &str) -> String {
    nfc(value.trim()).to_lowercase()
}

/// A user's display name: 1..=100 characters after trimming.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct DisplayName(String);

impl DisplayName {
    /// # Errors
    /// `display_name` with `empty`, `too-long` or `invalid-format`.
    pub fn parse(value: &str) -> Result<Self, ValidationError> {
        check_text("display_name", value, 1, 100).map(Self)
    }

    /// The trimmed name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// What an account may do. Admins manage shared data such as holidays.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Role {
    /// An ordinary account: owns its alarms and nothing else.
    User,
    /// May also write shared data (holidays) and read the audit log.
    Admin,
}

impl Role {
    /// The stable lower-case name.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::User => "user",
            Role::Admin => "admin",
        }
    }

    /// # Errors
    /// `role` with `unknown-value`.
    pub fn parse(value: &str) -> Result<Self, ValidationError> {
        match value {
            "user" => Ok(Role::User),
            "admin" => Ok(Role::Admin),
            other => Err(ValidationError::new(
                "role",
                codes::UNKNOWN_VALUE,
                format!("must be `user` or `admin`, got `{other}`"),
            )),
        }
    }
}

/// Every officially assigned ISO 3166-1 alpha-2 code.
const ISO_3166_ALPHA2: &str = "AD AE AF AG AI AL AM AO AQ AR AS AT AU AW AX AZ BA BB BD BE BF BG BH BI BJ BL \
BM BN BO BQ BR BS BT BV BW BY BZ CA CC CD CF CG CH CI CK CL CM CN CO CR CU CV CW CX CY CZ DE DJ DK DM DO \
DZ EC EE EG EH ER ES ET FI FJ FK FM FO FR GA GB GD GE GF GG GH GI GL GM GN GP GQ GR GS GT GU GW GY HK HM \
HN HR HT HU ID IE IL IM IN IO IQ IR IS IT JE JM JO JP KE KG KH KI KM KN KP KR KW KY KZ LA LB LC LI LK LR \
LS LT LU LV LY MA MC MD ME MF MG MH MK ML MM MN MO MP MQ MR MS MT MU MV MW MX MY MZ NA NC NE NF NG NI NL \
NO NP NR NU NZ OM PA PE PF PG PH PK PL PM PN PR PS PT PW PY QA RE RO RS RU RW SA SB SC SD SE SG SH SI SJ \
SK SL SM SN SO SR SS ST SV SX SY SZ TC TD TF TG TH TJ TK TL TM TN TO TR TT TV TW TZ UA UG UM US UY UZ VA \
VC VE VG VI VN VU WF WS YE YT ZA ZM ZW";

/// A country as an ISO 3166-1 alpha-2 code, stored upper-case.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Country([u8; 2]);

impl Country {
    /// Accepts an assigned code in either case (`br`, `BR`).
    ///
    /// # Errors
    /// `country` with `invalid-format` (not two letters) or `unknown-value`.
    pub fn parse(value: &str) -> Result<Self, ValidationError> {
        let upper = value.trim().to_ascii_uppercase();
        let bytes = upper.as_bytes();
        if bytes.len() != 2 || !bytes.iter().all(u8::is_ascii_uppercase) {
            return Err(ValidationError::new(
                "country",
                codes::INVALID_FORMAT,
                "must be a two-letter ISO 3166-1 alpha-2 code",
            ));
        }
        if !ISO_3166_ALPHA2.split(' ').any(|code| code == upper) {
            return Err(ValidationError::new(
                "country",
                codes::UNKNOWN_VALUE,
                format!("`{upper}` is not an assigned ISO 3166-1 alpha-2 code"),
            ));
        }
        Ok(Self([bytes[0], bytes[1]]))
    }

    /// The upper-case code, e.g. `BR`.
    pub fn as_str(&self) -> &str {
        // Both bytes were checked to be ASCII upper-case letters.
        std::str::from_utf8(&self.0).unwrap_or("??")
    }
}

impl fmt::Display for Country {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A state or province: the part after the hyphen of an ISO 3166-2 code
/// (`SP` for `BR-SP`), 1..=3 letters or digits, stored upper-case.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct StateCode(String);

impl StateCode {
    /// # Errors
    /// `state` with `invalid-format`.
    pub fn parse(value: &str) -> Result<Self, ValidationError> {
        let upper = value.trim().to_ascii_uppercase();
        if upper.is_empty() || upper.len() > 3 || !upper.bytes().all(|b| b.is_ascii_alphanumeric())
        {
            return Err(ValidationError::new(
                "state",
                codes::INVALID_FORMAT,
                "must be 1 to 3 letters or digits (the ISO 3166-2 subdivision code)",
            ));
        }
        Ok(Self(upper))
    }

    /// The upper-case code.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Where a user lives, for holiday selection: a country and optionally a state.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Locale {
    country: Country,
    state: Option<StateCode>,
}

impl Locale {
    /// A country with an optional state.
    pub fn new(country: Country, state: Option<StateCode>) -> Self {
        Self { country, state }
    }

    /// The country.
    pub fn country(&self) -> Country {
        self.country
    }

    /// The state, when known.
    pub fn state(&self) -> Option<&StateCode> {
        self.state.as_ref()
    }
}

/// A user account's profile. Credentials live elsewhere (the credential store),
/// so a `User` can be logged and shown without exposing a secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    id: UserId,
    email: Email,
    display_name: DisplayName,
    role: Role,
    time_zone: TimeZoneName,
    locale: Option<Locale>,
    verified_at: Option<jiff::Timestamp>,
}

impl User {
    /// Assembles a user from validated parts, with an address not yet
    /// verified ([`User::with_verified`] sets it).
    pub fn new(
        id: UserId,
        email: Email,
        display_name: DisplayName,
        role: Role,
        time_zone: TimeZoneName,
        locale: Option<Locale>,
    ) -> Self {
        Self {
            id,
            email,
            display_name,
            role,
            time_zone,
            locale,
            verified_at: None,
        }
    }

    /// The same account with `role`.
    #[must_use]
    pub fn with_role(mut self, role: Role) -> Self {
        self.role = role;
        self
    }

    /// The same account with its address verified at `at` (`None`: not
    /// verified).
    #[must_use]
    pub fn with_verified(mut self, at: Option<jiff::Timestamp>) -> Self {
        self.verified_at = at;
        self
    }

    /// The account id.
    pub fn id(&self) -> UserId {
        self.id
    }
    /// The login email.
    pub fn email(&self) -> &Email {
        &self.email
    }
    /// The name shown to others.
    pub fn display_name(&self) -> &DisplayName {
        &self.display_name
    }
    /// The account's role.
    pub fn role(&self) -> Role {
        self.role
    }
    /// The default zone for new alarms.
    pub fn time_zone(&self) -> &TimeZoneName {
        &self.time_zone
    }
    /// Country and state, for holidays.
    pub fn locale(&self) -> Option<&Locale> {
        self.locale.as_ref()
    }
    /// When the account proved it receives mail at its address (the
    /// e-mailed link, or an operator); `None` until then.
    pub fn verified_at(&self) -> Option<jiff::Timestamp> {
        self.verified_at
    }
    /// Whether alarm e-mail may go to the address: only a verified one
    /// receives it, so an account cannot make the service mail a stranger.
    pub fn receives_email(&self) -> bool {
        self.verified_at.is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails_compare_case_insensitively() {
        let a = Email::parse(" Ana@Example.COM ").unwrap();
        let b = Email::parse("ana@example.com").unwrap();
        assert_eq!(a, b);
        assert_eq!(a.as_str(), "Ana@Example.COM");
        assert_eq!(a.key(), "ana@example.com");
    }

    #[test]
    fn bad_emails_name_the_reason() {
        for bad in [
            "",
            "no-at",
            "a@b",
            "a@@b.com",
            ".a@b.com",
            "a b@c.com",
            "a@-b.com",
            "a@b..com",
        ] {
            let err = Email::parse(bad).unwrap_err();
            assert_eq!(err.field(), "email", "{bad}");
        }
        let long = format!("{}@example.com", "a".repeat(65));
        assert_eq!(
            Email::parse(&long).unwrap_err().code(),
            codes::INVALID_FORMAT
        );
    }

    #[test]
    fn countries_and_states() {
        assert_eq!(Country::parse("br").unwrap().as_str(), "BR");
        assert_eq!(
            Country::parse("XX").unwrap_err().code(),
            codes::UNKNOWN_VALUE
        );
        assert_eq!(
            Country::parse("BRA").unwrap_err().code(),
            codes::INVALID_FORMAT
        );
        assert_eq!(StateCode::parse("sp").unwrap().as_str(), "SP");
        assert!(StateCode::parse("S-P").is_err());
        assert!(StateCode::parse("").is_err());
    }

    #[test]
    fn roles_and_display_names() {
        assert_eq!(Role::parse("admin").unwrap(), Role::Admin);
        assert_eq!(
            Role::parse("root").unwrap_err().code(),
            codes::UNKNOWN_VALUE
        );
        assert_eq!(DisplayName::parse(" Ana ").unwrap().as_str(), "Ana");
        assert!(DisplayName::parse(&"x".repeat(101)).is_err());
        assert!(DisplayName::parse(&"x".repeat(100)).is_ok());
    }
}
