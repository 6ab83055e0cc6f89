"""A ModelOp PySpark model that imports a module the Spark image does not have, to test that the
job ends in ERROR with failure class MISSING_DEPENDENCY naming the module."""

import modelop_e2e_absent_module  # noqa: F401 - installed nowhere, on purpose


# modelop.score
def action(external_inputs, external_outputs, external_model_assets):
    return {"unreachable": True}
