//! The label job as it arrives in JSON: one type per template, validated by serde.
//!
//! A job names its template in `"template"` and carries that template's fields;
//! unknown fields are errors (`deny_unknown_fields`), so a misspelt option is never
//! silently ignored. `"version"` is optional and, when given, must be
//! [`JOB_VERSION`]: a client that writes it gets a clear error instead of a
//! misreading if the shape ever changes. `docs/labels.md` documents every field and
//! `docs/label-job.schema.json` is the JSON Schema (Draft 2020-12) of this module.
//!
//! Parsing only checks the shape. Content rules (barcode digits, line lengths, what
//! fits on the label) are checked by [`crate::layout::layout`], which says which
//! element failed and by how much.

use serde::{Deserialize, Serialize};

use super::{LayoutError, LayoutErrorKind};

/// The job shape this build understands.
pub const JOB_VERSION: u32 = 1;

/// A label job: the template and its fields.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "template", rename_all = "lowercase")]
pub enum Job {
    /// An address label on a roll or die-cut stock.
    Address(AddressJob),
    /// A #10 envelope printed on a laser.
    Envelope(EnvelopeJob),
    /// A tray or sack tag with the 24-digit IM tray barcode.
    Tray(TrayJob),
    /// A pallet or container placard with the IM container barcode.
    Placard(PlacardJob),
    /// A letter sheet of address labels (many records, one page per sheet).
    Sheet(SheetJob),
    /// A free layout of elements.
    Custom(CustomJob),
}

impl Job {
    /// Parses a job from JSON.
    ///
    /// # Errors
    ///
    /// [`LayoutErrorKind::Json`] when the text is not a job (the message names the
    /// field), [`LayoutErrorKind::Version`] for a version other than
    /// [`JOB_VERSION`].
    pub fn from_json(text: &str) -> Result<Job, LayoutError> {
        let job: Job = serde_json::from_str(text).map_err(|e| {
            LayoutError::new(
                "label job",
                "",
                LayoutErrorKind::Json {
                    message: e.to_string(),
                },
            )
        })?;
        if let Some(found) = job.version().filter(|&v| v != JOB_VERSION) {
            return Err(LayoutError::new(
                format!("{} job", job.template_name()),
                "version",
                LayoutErrorKind::Version { found },
            ));
        }
        Ok(job)
    }

    /// The template's name as written in `"template"`.
    pub const fn template_name(&self) -> &'static str {
        match self {
            Job::Address(_) => "address",
            Job::Envelope(_) => "envelope",
            Job::Tray(_) => "tray",
            Job::Placard(_) => "placard",
            Job::Sheet(_) => "sheet",
            Job::Custom(_) => "custom",
        }
    }

    /// The `"version"` the job gave, if any.
    pub fn version(&self) -> Option<u32> {
        match self {
            Job::Address(j) => j.version,
            Job::Envelope(j) => j.version,
            Job::Tray(j) => j.version,
            Job::Placard(j) => j.version,
            Job::Sheet(j) => j.version,
            Job::Custom(j) => j.version,
        }
    }
}

/// The data of an Intelligent Mail barcode.
///
/// Two forms. With `tracking` (all 20 digits) the client owns the serial and the
/// barcode is printed as given. With `mailer_id` and `service_type` (and
/// `barcode_id`, default `"00"`) instead, the daemon allocates the serial from the
/// Mailer ID's configured range when it accepts the job and fills in `tracking`; such
/// a job cannot be laid out before that ([`ImbData::serial_request`]).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ImbData {
    /// The 20-digit tracking code: barcode id, service type id, mailer id, serial.
    /// Empty when the serial is to be allocated.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub tracking: String,
    /// Barcode Identifier (2 digits) for an allocated serial; default `"00"`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub barcode_id: Option<String>,
    /// Service Type ID (3 digits) for an allocated serial.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_type: Option<String>,
    /// Mailer ID (6 or 9 digits) whose range the serial comes from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mailer_id: Option<String>,
    /// The routing code: the delivery point ZIP Code with 0, 5, 9 or 11 digits.
    #[serde(default)]
    pub routing: String,
}

/// The fields of an IMb whose serial the daemon allocates.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SerialRequest {
    /// Barcode Identifier, 2 digits.
    pub barcode_id: String,
    /// Service Type ID, 3 digits.
    pub service_type: String,
    /// Mailer ID, 6 or 9 digits.
    pub mailer_id: String,
}

impl ImbData {
    /// Client-assigned data: a full tracking code and a routing code.
    pub fn new(tracking: impl Into<String>, routing: impl Into<String>) -> ImbData {
        ImbData {
            tracking: tracking.into(),
            routing: routing.into(),
            ..ImbData::default()
        }
    }

    /// Which form this is: `Ok(None)` for a full tracking code, `Ok(Some(..))` when the
    /// serial is to be allocated, `Err` (field, message) when the two forms are mixed
    /// or neither is complete.
    pub fn serial_request(&self) -> Result<Option<SerialRequest>, (&'static str, String)> {
        let allocating =
            self.mailer_id.is_some() || self.service_type.is_some() || self.barcode_id.is_some();
        match (self.tracking.is_empty(), allocating) {
            (false, false) => Ok(None),
            (false, true) => Err((
                "tracking",
                "imb has both tracking and mailer_id/service_type/barcode_id; give the full \
                 20-digit tracking code, or the fields without tracking to have a serial allocated"
                    .into(),
            )),
            (true, false) => Err((
                "tracking",
                "imb needs tracking (20 digits), or mailer_id and service_type to have a serial allocated"
                    .into(),
            )),
            (true, true) => {
                let mailer_id = self.mailer_id.clone().ok_or((
                    "mailer_id",
                    "imb.mailer_id is missing; a serial is allocated per Mailer ID".to_owned(),
                ))?;
                let service_type = self.service_type.clone().ok_or((
                    "service_type",
                    "imb.service_type is missing (the 3-digit Service Type ID, e.g. \"270\")"
                        .to_owned(),
                ))?;
                Ok(Some(SerialRequest {
                    barcode_id: self.barcode_id.clone().unwrap_or_else(|| "00".to_owned()),
                    service_type,
                    mailer_id,
                }))
            }
        }
    }

    /// The same data with the allocated tracking code filled in.
    pub fn with_tracking(&self, tracking: &str) -> ImbData {
        ImbData::new(tracking, self.routing.clone())
    }
}

/// Where the IMb goes relative to the address block.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ImbPosition {
    /// Directly above the first address line (as USPS's own shipping labels do).
    #[default]
    Above,
    /// Directly below the last address line.
    Below,
}

/// Sizes of address labels.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum AddressSize {
    /// 4 × 6 in shipping label, fed 4 in across.
    #[serde(rename = "4x6")]
    In4x6,
    /// 4 × 3 in, fed 4 in across.
    #[serde(rename = "4x3")]
    In4x3,
    /// 4 × 2 in, fed 4 in across.
    #[serde(rename = "4x2")]
    In4x2,
    /// 3.5 × 1.125 in (DYMO 30252 / 99012 address labels), fed 1.125 in across:
    /// laid out landscape and printed turned.
    #[serde(rename = "3.5x1.125")]
    In3_5x1_125,
    /// Brother 62 mm continuous tape: the text runs along the tape, which is
    /// 2.32 in (696 dots at 300 dpi) printable across; the length is computed from
    /// the content or given in `length_mm`.
    #[serde(rename = "62mm")]
    Mm62,
    /// 2.25 × 1.25 in, fed 2.25 in across.
    #[serde(rename = "2.25x1.25")]
    In2_25x1_25,
}

impl AddressSize {
    /// The size as written in jobs.
    pub const fn name(self) -> &'static str {
        match self {
            AddressSize::In4x6 => "4x6",
            AddressSize::In4x3 => "4x3",
            AddressSize::In4x2 => "4x2",
            AddressSize::In3_5x1_125 => "3.5x1.125",
            AddressSize::Mm62 => "62mm",
            AddressSize::In2_25x1_25 => "2.25x1.25",
        }
    }
}

/// `"template": "address"`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AddressJob {
    /// Job shape version; [`JOB_VERSION`] when given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<u32>,
    /// Label size.
    pub size: AddressSize,
    /// The delivery address, 1–6 lines, top to bottom.
    pub to: Vec<String>,
    /// The return address, 0–6 lines.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub from: Vec<String>,
    /// The Intelligent Mail barcode, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub imb: Option<ImbData>,
    /// IMb above or below the address block.
    #[serde(default)]
    pub imb_position: ImbPosition,
    /// An ancillary service endorsement, e.g. `ELECTRONIC SERVICE REQUESTED`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endorsement: Option<String>,
    /// Print every address line in upper case.
    #[serde(default)]
    pub uppercase: bool,
    /// Refuse address lines longer than this many characters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_line_chars: Option<u32>,
    /// `62mm` only: the label length along the tape in millimetres (default:
    /// computed from the content).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub length_mm: Option<f64>,
}

/// Envelope sizes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum EnvelopeSize {
    /// #10 business envelope, 9.5 × 4.125 in.
    #[default]
    #[serde(rename = "#10", alias = "10")]
    No10,
}

/// `"template": "envelope"`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EnvelopeJob {
    /// Job shape version; [`JOB_VERSION`] when given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<u32>,
    /// Envelope size (only `#10`).
    #[serde(default)]
    pub size: EnvelopeSize,
    /// The delivery address, 1–6 lines.
    pub to: Vec<String>,
    /// The return address, 0–6 lines.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub from: Vec<String>,
    /// The Intelligent Mail barcode, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub imb: Option<ImbData>,
    /// IMb above or below the address block.
    #[serde(default)]
    pub imb_position: ImbPosition,
    /// An ancillary service endorsement.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endorsement: Option<String>,
    /// Print every address line in upper case.
    #[serde(default)]
    pub uppercase: bool,
    /// Refuse address lines longer than this many characters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_line_chars: Option<u32>,
}

/// Tray and sack tag sizes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum TraySize {
    /// 3.25 × 2 in, the stock commonly used for letter-tray label holders.
    #[default]
    #[serde(rename = "3.25x2")]
    In3_25x2,
    /// 4 × 2 in thermal stock.
    #[serde(rename = "4x2")]
    In4x2,
}

impl TraySize {
    /// The size as written in jobs.
    pub const fn name(self) -> &'static str {
        match self {
            TraySize::In3_25x2 => "3.25x2",
            TraySize::In4x2 => "4x2",
        }
    }
}

/// `"template": "tray"`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrayJob {
    /// Job shape version; [`JOB_VERSION`] when given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<u32>,
    /// Tag size.
    #[serde(default)]
    pub size: TraySize,
    /// The 24 digits of the IM tray barcode (spaces between them are ignored).
    pub barcode: String,
    /// Line 1: destination (e.g. `ADC DALLAS TX 752`).
    pub destination: String,
    /// Line 2: content (class and processing category, e.g. `FCM LTR 5D BC`).
    pub content: String,
    /// Line 3: origin (entry office or mailer, city and state).
    pub origin: String,
}

/// Placard sizes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum PlacardSize {
    /// 8.5 × 11 in letter sheet on a laser (the 8 × 11 in minimum with margins).
    #[default]
    #[serde(rename = "8.5x11")]
    Letter,
    /// 4 × 6 in thermal label, laid out 6 in wide and printed turned.
    #[serde(rename = "4x6")]
    In4x6,
}

impl PlacardSize {
    /// The size as written in jobs.
    pub const fn name(self) -> &'static str {
        match self {
            PlacardSize::Letter => "8.5x11",
            PlacardSize::In4x6 => "4x6",
        }
    }
}

/// Which Code 128 code sets the container barcode uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum PlacardEncoding {
    /// Code set B throughout: 277 modules, 6.4–7.2 in (the only form inside
    /// USPS's recommended 6.25–7.25 in length); needs the 8.5 × 11 placard.
    SetB,
    /// The fewest symbol characters (189 modules for an all-digit serial): fits a
    /// 4 × 6 label turned; under the 7.25 in maximum but below the recommendation.
    Shortest,
}

/// `"template": "placard"`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PlacardJob {
    /// Job shape version; [`JOB_VERSION`] when given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<u32>,
    /// Placard size.
    #[serde(default)]
    pub size: PlacardSize,
    /// The 21 characters of the IM container barcode, e.g. `99M900066875EMA000051`
    /// (spaces are ignored, so the human-readable form is accepted too).
    pub barcode: String,
    /// Line 1: destination.
    pub destination: String,
    /// Line 2: contents.
    pub content: String,
    /// Line 3: origin.
    pub origin: String,
    /// Code sets (default: `set-b` on 8.5x11, `shortest` on 4x6).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub encoding: Option<PlacardEncoding>,
    /// The banner above the barcode; `null` for none.
    #[serde(default = "default_banner")]
    pub banner: Option<String>,
    /// Identification bars above and below the barcode.
    #[serde(default = "yes")]
    pub bars: bool,
}

fn default_banner() -> Option<String> {
    Some("USPS SCAN REQUIRED".to_owned())
}

fn yes() -> bool {
    true
}

/// Label sheet layouts.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum SheetLayout {
    /// Avery 5163 / 8163: 10 labels of 4 × 2 in, 2 columns × 5 rows.
    #[default]
    #[serde(rename = "avery-5163")]
    Avery5163,
    /// Avery 5160 / 8160: 30 labels of 2.625 × 1 in, 3 columns × 10 rows (too
    /// narrow for an IMb).
    #[serde(rename = "avery-5160")]
    Avery5160,
}

impl SheetLayout {
    /// The layout as written in jobs.
    pub const fn name(self) -> &'static str {
        match self {
            SheetLayout::Avery5163 => "avery-5163",
            SheetLayout::Avery5160 => "avery-5160",
        }
    }
}

/// One address on a sheet.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SheetRecord {
    /// The delivery address, 1–6 lines.
    pub to: Vec<String>,
    /// The return address (default: the sheet's `from`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<Vec<String>>,
    /// This piece's IMb.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub imb: Option<ImbData>,
    /// This piece's endorsement (default: the sheet's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endorsement: Option<String>,
}

/// `"template": "sheet"`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SheetJob {
    /// Job shape version; [`JOB_VERSION`] when given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<u32>,
    /// The sheet layout.
    #[serde(default)]
    pub layout: SheetLayout,
    /// The addresses, filled row by row.
    pub records: Vec<SheetRecord>,
    /// Return address for every record that has none.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub from: Vec<String>,
    /// Endorsement for every record that has none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endorsement: Option<String>,
    /// IMb above or below each address block.
    #[serde(default)]
    pub imb_position: ImbPosition,
    /// Print every address line in upper case.
    #[serde(default)]
    pub uppercase: bool,
    /// Refuse address lines longer than this many characters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_line_chars: Option<u32>,
    /// 1-based position of the first label to use on the first sheet (to reuse a
    /// partly used sheet).
    #[serde(default = "one")]
    pub start_at: u32,
}

fn one() -> u32 {
    1
}

/// Length unit of a custom layout.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Unit {
    /// Inches.
    #[default]
    In,
    /// Millimetres.
    Mm,
}

impl Unit {
    /// Inches per unit.
    pub const fn inches(self) -> f64 {
        match self {
            Unit::In => 1.0,
            Unit::Mm => 1.0 / 25.4,
        }
    }
}

/// How a custom label travels through the printer.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FeedJob {
    /// The label's width goes across the print head.
    #[default]
    Portrait,
    /// The label's height goes across the print head (printed turned 90°).
    Landscape,
}

/// `"template": "custom"`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CustomJob {
    /// Job shape version; [`JOB_VERSION`] when given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<u32>,
    /// Unit of every length in the job (font sizes are always points).
    #[serde(default)]
    pub unit: Unit,
    /// Label width, as read.
    pub width: f64,
    /// Label height, as read.
    pub height: f64,
    /// Which way the label feeds.
    #[serde(default)]
    pub feed: FeedJob,
    /// The elements, drawn in order.
    pub elements: Vec<CustomElement>,
}

/// Horizontal alignment of text lines within their box.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Align {
    /// Flush left.
    #[default]
    Left,
    /// Centred.
    Center,
    /// Flush right.
    Right,
}

/// One element of a custom layout. Every element may give its own `unit`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum CustomElement {
    /// Lines of text.
    Text(CustomText),
    /// An Intelligent Mail barcode.
    Imb(CustomImb),
    /// A Code 128 (or GS1-128) symbol.
    Code128(CustomCode128),
    /// A straight line.
    Line(CustomLine),
    /// A rectangle, outlined or filled.
    Box(CustomBox),
    /// A 1-bit picture from a PNG.
    Image(CustomImage),
}

/// `"type": "text"`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CustomText {
    /// Unit of this element's lengths (default: the job's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unit: Option<Unit>,
    /// Left edge of the box.
    pub x: f64,
    /// Top edge of the first line box.
    pub y: f64,
    /// The lines, top to bottom.
    pub lines: Vec<String>,
    /// Size in points.
    #[serde(default = "ten")]
    pub size_pt: f64,
    /// Typeface.
    #[serde(default)]
    pub font: crate::render::text::Font,
    /// Box width: lines are aligned in it and must fit (default: the widest line).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub width: Option<f64>,
    /// Alignment in the box.
    #[serde(default)]
    pub align: Align,
}

fn ten() -> f64 {
    10.0
}

/// `"type": "imb"`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CustomImb {
    /// Unit of this element's lengths (default: the job's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unit: Option<Unit>,
    /// Leading edge of the first bar.
    pub x: f64,
    /// Top of the ascenders.
    pub y: f64,
    /// The 20-digit tracking code.
    pub tracking: String,
    /// The routing code (0, 5, 9 or 11 digits).
    #[serde(default)]
    pub routing: String,
}

/// `"type": "code128"`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CustomCode128 {
    /// Unit of this element's lengths (default: the job's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unit: Option<Unit>,
    /// Left edge of the first bar.
    pub x: f64,
    /// Top of the bars.
    pub y: f64,
    /// Bar height.
    pub height: f64,
    /// The data: ASCII characters.
    pub data: String,
    /// Start with FNC1 (GS1-128).
    #[serde(default)]
    pub gs1: bool,
    /// Target module (narrowest bar) width; the renderer picks whole dots within
    /// ±15 % of it (default 0.015 in, or its equivalent in the unit).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub module: Option<f64>,
    /// Print the data under the bars.
    #[serde(default)]
    pub text: bool,
}

/// `"type": "line"`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CustomLine {
    /// Unit of this element's lengths (default: the job's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unit: Option<Unit>,
    /// Start point, x.
    pub x1: f64,
    /// Start point, y.
    pub y1: f64,
    /// End point, x.
    pub x2: f64,
    /// End point, y.
    pub y2: f64,
    /// Line thickness (default 1 pt = 1/72 in).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub thickness: Option<f64>,
}

/// `"type": "box"`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CustomBox {
    /// Unit of this element's lengths (default: the job's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unit: Option<Unit>,
    /// Left edge.
    pub x: f64,
    /// Top edge.
    pub y: f64,
    /// Width.
    pub width: f64,
    /// Height.
    pub height: f64,
    /// Outline thickness, drawn inside the box (default 1 pt).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub thickness: Option<f64>,
    /// Fill the whole box black.
    #[serde(default)]
    pub fill: bool,
}

/// `"type": "image"`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CustomImage {
    /// Unit of this element's lengths (default: the job's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unit: Option<Unit>,
    /// Left edge.
    pub x: f64,
    /// Top edge.
    pub y: f64,
    /// Width (default: from `height` and the aspect ratio, or the PNG's `pHYs`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub width: Option<f64>,
    /// Height (default: from `width` and the aspect ratio, or the PNG's `pHYs`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub height: Option<f64>,
    /// The PNG file, base64 (standard alphabet; a `data:image/png;base64,` prefix
    /// is allowed). Paths are not accepted: layout reads no files.
    pub png: String,
}
