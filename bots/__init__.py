"""Bot personalities and the LLM providers that voice them: no models, no views."""
