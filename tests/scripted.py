"""A hand-written stand-in model for the engine's and the tutors' own logic, and the scripts
the tests give it."""

APPLES = "Mia has 8 apples, gets 11 more and eats 4. How many are left?"
SHELLS = "Tom has 3 bags of 4 shells, finds 5 and gives away 7. How many now?"
SLIP = "Step 1: 8 + 11 = 29\nStep 2: 29 - 4 = 25\nAnswer: 25"
FIXED = "Step 1: 8 + 11 = 19\nStep 2: 19 - 4 = 15\nAnswer: 15"
PLAIN = "Step 1: 3 x 4 = 12\nStep 2: 12 + 5 = 17\nStep 3: 17 - 7 = 10\nAnswer: 10"


class ScriptedBackend:
    """One token per character; it continues the completion it is given along one of the
    question's scripts that the completion starts (the first when greedy, the seed's when
    sampling). `scripts`: {question: scripts}, or one list of scripts for every question."""

    name = "scripted"
    eos_id = 0
    context_length = 4096
    max_token_bytes = 4

    def __init__(self, scripts: dict[str, list[str]] | list[str]):
        self.scripts = scripts
        self.calls = 0
        self.prompts: list[str] = []  # every prompt it continued, as text

    def encode_prompt(self, question):
        return self.tokenize(f"Q: {question}\nA: ")

    def tokenize(self, text, special=False):
        return [ord(c) for c in text]

    def decode(self, ids):
        return "".join(map(chr, ids))

    def token_bytes(self, token):
        return chr(token).encode()

    def _continue(self, prompt, settings):
        self.calls += 1
        self.prompts.append(self.decode(prompt))
        question, _, done = self.decode(prompt).removeprefix("Q: ").partition("\nA: ")
        scripts = self.scripts[question] if isinstance(self.scripts, dict) else self.scripts
        fits = [s for s in scripts if s.startswith(done)]
        script = fits[(settings.seed or 0) % len(fits)] if settings.temperature > 0 else fits[0]
        return self.tokenize(script[len(done):])[:settings.max_new_tokens]

    def stream_ids(self, prompt, settings):
        for token in self._continue(prompt, settings):
            yield token, None

    def generate_batch(self, prompts, settings):
        return [self._continue(p, settings) for p in prompts]
