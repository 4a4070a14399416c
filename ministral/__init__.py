"""Everything Docent knows about Mistral's models, in one place.

- `limits`: what a request may carry (images per request, bytes per image, pixels).
- `prompt`: the neutral shape of a chat request (text, image and thinking parts).
- `tokens`: exact Ministral 3 token counts of that shape (the Tekken BPE, the V13 template).
- `registry`: each seed model by every id its providers use, with window, vision,
  reasoning and default sampling.
- `reasoning`: the Reasoning models' system prompt and the splitter that keeps
  inline ``[THINK]…[/THINK]`` out of the answer.

Only this package imports mistral-common. It knows nothing of HTTP or of the OpenAI
wire format; `assistant.llm` turns the neutral shape into a provider's request.
"""
