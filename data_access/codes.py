"""Code lists of the data contract. Labels for people live in the translation catalogue."""

CHANNELS = (
    "phone", "callback", "chat", "chatbot", "e_message",
    "digital_form", "video", "walk_in", "home_visit", "mobile",
)
CONTACT_TYPES = (
    "R10", "R20", "R30", "R40", "R41", "R50", "R51", "R52", "R55", "R56",
    "R60", "R71", "R72", "R80", "R90",
)
# Avohilmo yhteystapa derived from the channel when a record does not carry one.
CONTACT_TYPE_BY_CHANNEL = {
    "phone": "R52", "callback": "R52", "chat": "R52", "chatbot": "R56", "video": "R52",
    "e_message": "R56", "digital_form": "R56", "walk_in": "R10", "home_visit": "R20",
    "mobile": "R41",
}
DESTINATIONS = (
    "tk_doctor", "tk_nurse", "mental_health_substance", "physio_rehab", "tk_social_counsellor",
    "other_primary_care", "specialist_care", "adult_social_services", "disability_services",
    "elderly_social_services", "third_sector", "kela", "employment_services", "sports_services",
    "culture_services", "other", "none_needed",
)
NO_REFERRAL_NEEDED = "none_needed"
INITIATORS = (
    "self", "relative", "primary_care", "specialist_care", "social_services",
    "employment_services", "other",
)
SERVICE_LINES = (
    "health", "social", "mental_health_substance", "elderly", "family", "disability",
    "employment", "oral_health", "rehabilitation", "other",
)
REASONS = (
    "many_visits", "many_services", "multimorbidity", "single_health_issue",
    "mental_health_substance", "suspected_risk", "unclear_employment", "cannot_use_services",
    "loneliness_moving", "family_problems", "financial_problems", "difficult_life_situation",
)
PROFESSIONAL_GROUPS = (
    "nurse", "doctor", "social_worker", "social_counsellor", "physiotherapist",
    "psychologist", "team", "other",
)
AGE_BANDS = ("0-17", "18-64", "65-79", "80+")
AGE_BAND_MIDPOINTS = {"0-17": 9.0, "18-64": 41.0, "65-79": 72.0, "80+": 85.0}
OUTCOMES = (
    "resolved", "referred", "appointment_booked", "callback_scheduled",
    "failure_demand", "no_action_needed", "other",
)
REFERRAL_STATUSES = ("planned", "started", "cancelled")
# Guidance cases (seed 003's personal guidance, seed 002's multi-service process) and their
# outcome measurements: WHOQOL-BREF's four domains, Kykyviisari's overall score and five areas.
PROCESSES = ("personal_guidance", "multi_service", "other")
INSTRUMENTS = ("whoqol_bref", "kykyviisari", "other")
PHASES = ("start", "interim", "end")
DOMAINS_BY_INSTRUMENT = {
    "whoqol_bref": ("physical", "psychological", "social", "environment"),
    "kykyviisari": ("overall", "mental", "social", "physical", "skills", "everyday"),
}
DOMAINS = tuple(dict.fromkeys(d for domains in DOMAINS_BY_INSTRUMENT.values() for d in domains))
# Guidance visits per case that seed 003's guideline expects (1-5).
GUIDELINE_VISITS = (1, 5)
QUEUED_CHANNELS = ("phone", "callback", "chat")
# The code list of each coded column, wherever it is stored: ingestion accepts only these
# values, and the fact store holds each such column as an Enum of its list.
BY_COLUMN = {
    "channel": CHANNELS, "contact_type": CONTACT_TYPES, "initiator": INITIATORS, "service_line": SERVICE_LINES,
    "reason": REASONS, "professional_group": PROFESSIONAL_GROUPS, "age_band": AGE_BANDS, "outcome": OUTCOMES,
    "destination": DESTINATIONS, "status": REFERRAL_STATUSES,
    "process": PROCESSES, "instrument": INSTRUMENTS, "phase": PHASES, "domain": DOMAINS,
}
# Coded columns that take another column's list: who identified a case is an initiator code,
# a case's reasons are reason codes (several, separated by '|').
LIST_OF = {"identified_by": "initiator", "reasons": "reason"}


def age_band(age: int) -> str:
    if age < 18:
        return "0-17"
    if age < 65:
        return "18-64"
    if age < 80:
        return "65-79"
    return "80+"
