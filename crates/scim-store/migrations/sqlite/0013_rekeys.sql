-- Key recomputations done once, after a change to how keys are derived (`rekey.rs`): 'nfc' is
-- the fold of case-insensitive names gaining Unicode normalisation (issue 35).
CREATE TABLE scimd_rekeys (name TEXT PRIMARY KEY);
