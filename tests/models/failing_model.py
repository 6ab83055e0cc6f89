"""A ModelOp PySpark model whose score function always fails, to test the driver's error path."""

FAILURE_MESSAGE = "failing_model: deliberate scoring failure (code FM-4711)"


def _check_inputs(external_inputs):
    if external_inputs is None:
        raise TypeError("external_inputs must be a list")


# modelop.score
def action(external_inputs, external_outputs, external_model_assets):
    _check_inputs(external_inputs)
    raise ValueError(FAILURE_MESSAGE)
