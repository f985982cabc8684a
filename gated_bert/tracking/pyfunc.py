"""The MLflow pyfunc wrapper of a trained model; the prediction logic is `inference.TextPredictor`."""

from __future__ import annotations

import warnings

import mlflow

# MLflow warns at class creation that predict lacks type hints; our signature is explicit.
# (MLflow forces that warning on with its own filter, so it is recorded and dropped.)
with warnings.catch_warnings(record=True):

    class GatedBertPyfunc(mlflow.pyfunc.PythonModel):
        """Serves a trained classifier on text: DataFrame of text columns -> label, label name and
        class probabilities (score for STS-B); a bad request is an MlflowException (HTTP 400)."""

        def load_context(self, context):
            from gated_bert.inference import TextPredictor

            self.predictor = TextPredictor.from_files(
                context.artifacts["model"], context.artifacts["tokenizer"], context.artifacts["config"]
            )

        def predict(self, context, model_input, params=None):
            from mlflow.exceptions import MlflowException
            from mlflow.protos.databricks_pb2 import INVALID_PARAMETER_VALUE

            from gated_bert.inference import InvalidInput

            try:
                return self.predictor.predict(model_input)
            except InvalidInput as err:  # served: HTTP 400 with the message, not a 500
                raise MlflowException(str(err), error_code=INVALID_PARAMETER_VALUE) from None
