"""The MLflow pyfunc wrapper of a trained model; the prediction logic is `inference.TextPredictor`."""

from __future__ import annotations

import warnings

import mlflow

# MLflow warns at class creation that predict lacks type hints; our signature is explicit.
# (MLflow forces that warning on with its own filter, so it is recorded and dropped.)
with warnings.catch_warnings(record=True):

    class GatedBertPyfunc(mlflow.pyfunc.PythonModel):
        """Serves a trained classifier on text: DataFrame of text columns -> predictions."""

        def load_context(self, context):
            from gated_bert.inference import TextPredictor

            self.predictor = TextPredictor.from_files(
                context.artifacts["model"], context.artifacts["tokenizer"], context.artifacts["config"]
            )

        def predict(self, context, model_input, params=None):
            return self.predictor.predict(model_input)
