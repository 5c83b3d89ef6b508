"""Study aids drawn from the notes (issue 24): question–answer items tied to their evidence
sentence (`items`), drawn deterministically from the stored chunks (`extract`), kept only when
Shiori's own answer path gives them back (`roundtrip`), and exported as flashcards (`deck`).

Layer: below `eval`, `service` and the command, above `runtime`: it may use the runtime's parts,
the answer engine, ingest and the core, and nothing above it.
"""
