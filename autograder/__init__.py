"""The course's grading machinery: release, sandboxed class grading, feedback and grade export."""
