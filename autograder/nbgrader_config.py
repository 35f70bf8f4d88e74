"""nbgrader configuration for Taming Gradients.

solutions/ is nbgrader's source directory (the only hand-edited notebooks); course/ is its release
directory (what learners open). The gradebook lives in .nbgrader/ (git-ignored), never in course/.
Every entry point (make release, the tests, make lab's formgrader) loads this one file.
"""

import os

c = get_config()  # noqa: F821 (injected by traitlets when nbgrader loads this file)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

c.CourseDirectory.course_id = "taming-gradients"
c.CourseDirectory.root = os.environ.get("TG_COURSE_ROOT", ROOT)
c.CourseDirectory.source_directory = "solutions"
c.CourseDirectory.release_directory = os.environ.get("TG_RELEASE_DIR", "course")
GRADEBOOK = os.environ.get("TG_GRADEBOOK", os.path.join(ROOT, ".nbgrader", "gradebook.db"))
c.CourseDirectory.db_url = "sqlite:///" + GRADEBOOK
# SQLite cannot create the gradebook in a folder that does not exist (a fresh clone has no .nbgrader/:
# the formgrader would stay on "Loading"); a read-only install leaves it to whoever can write there.
try:
    os.makedirs(os.path.dirname(GRADEBOOK), exist_ok=True)
except OSError:
    pass
c.CourseDirectory.ignore = [".ipynb_checkpoints", "*.pyc", "__pycache__", "feedback", ".nbgrader"]
# nbgrader collect/release_feedback need timestamp.txt and submission_secret.txt beside each notebook.
c.CourseDirectory.include = ["*.ipynb", "timestamp.txt", "submission_secret.txt"]
c.GenerateAssignment.create_assignment = True
# The exchange (for nbgrader release/collect over a shared disk) stays inside the project by default.
c.Exchange.root = os.environ.get("TG_EXCHANGE", os.path.join(ROOT, ".nbgrader", "exchange"))
c.ClearSolutions.code_stub = {"python": "# YOUR CODE HERE\nraise NotImplementedError()"}
c.ClearSolutions.text_stub = "YOUR ANSWER HERE"
c.ExecutePreprocessor.timeout = 300
c.Execute.timeout = 300
c.Execute.kernel_name = "python3"
