"""``tfslm demo``: a Gradio page for a finished run (:func:`tfslm.demo.app.build_demo`); Gradio is imported lazily."""
