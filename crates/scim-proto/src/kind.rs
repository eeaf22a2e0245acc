//! The two resource types scimd serves (RFC 7643 §4): their names and endpoints.

/// `User` (`/Users`) or `Group` (`/Groups`); serialised as its resource type name.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
pub enum ResourceKind {
    User,
    Group,
}

impl ResourceKind {
    /// The resource type name (`meta.resourceType`, RFC 7643 §3.1).
    pub fn as_str(self) -> &'static str {
        match self {
            ResourceKind::User => "User",
            ResourceKind::Group => "Group",
        }
    }
    /// The endpoint path segment (RFC 7644 §3.2).
    pub fn endpoint(self) -> &'static str {
        match self {
            ResourceKind::User => "Users",
            ResourceKind::Group => "Groups",
        }
    }
    /// From the resource type name (`User`, `Group`).
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "User" => Some(Self::User),
            "Group" => Some(Self::Group),
            _ => None,
        }
    }
    /// From the endpoint segment (`Users`, `Groups`).
    pub fn from_endpoint(s: &str) -> Option<Self> {
        match s {
            "Users" => Some(Self::User),
            "Groups" => Some(Self::Group),
            _ => None,
        }
    }
}
