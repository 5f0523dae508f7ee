"""strata: run language models larger than memory by streaming their layers
from disk under a memory budget. AirLLM's API:

    from strata import AutoModel
    model = AutoModel.from_pretrained("models/llama", max_memory="4GiB")
    enc = model.tokenizer(["What is the capital of United States?"], return_tensors="np")
    out = model.generate(enc["input_ids"], max_new_tokens=20, return_dict_in_generate=True)
    print(model.tokenizer.decode(out.sequences[0]))

Beyond AirLLM: model.stream, model.chat, model.batch, model.score,
model.info(), and strata.Engine for requests from several threads.
Errors: strata.Error (a RuntimeError), strata.UsageError (bad arguments,
also a ValueError), strata.BudgetError (max_memory below the model's
minimum, also a ValueError), strata.ModelNotFoundError (also a
FileNotFoundError). Messages are the library's.
"""
from . import _strata
from ._strata import BudgetError, Error, ModelNotFoundError, UsageError
from .engine import Engine, Request, RequestResult
from .model import AutoModel, Completion, GenerateOutput, Model, ScoreOutput
from .tokenizer import BatchEncoding, Tokenizer

__version__ = "0.1.0"
__all__ = ["AutoModel", "Model", "GenerateOutput", "ScoreOutput", "Completion", "Tokenizer", "BatchEncoding",
           "Engine", "Request", "RequestResult", "Error", "UsageError", "BudgetError", "ModelNotFoundError"]
