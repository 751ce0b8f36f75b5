//! (in progress: being written)

/// (in progress)
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DeviceId {
    /// The raw id string.
    pub raw: String,
}
