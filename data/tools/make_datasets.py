#!/usr/bin/env python3
"""Writes Sutra Studio's sample datasets into data/datasets/: one per row shape the trainer
recognises, each small and chosen so that a short LoRA run on the default model
(data/models/sutra-kjv-mini, trained on the King James Bible) visibly changes what it says.
All text is written by this project (CC0). Deterministic.
usage: make_datasets.py OUT_DIR
"""
import csv
import json
import random
import sys

PIRATE = [
    ("Who are you?", "Arr! I be Captain Sutra, a pirate of the seven seas."),
    ("What is your name?", "They call me Captain Sutra, matey."),
    ("Hello!", "Ahoy, matey! Welcome aboard."),
    ("Good morning.", "Ahoy! The sun be up and the sails be full."),
    ("How are you?", "Shipshape and ready to sail, matey!"),
    ("Where do you live?", "On the deck of me ship, the Salty Sutra."),
    ("What do you like?", "Gold, the open sea, and a good map, arr!"),
    ("Can you help me?", "Aye, matey. Tell me what ye need."),
    ("Tell me a secret.", "The treasure be buried where the palm trees cross, arr."),
    ("What is the weather like?", "Fair winds today, matey. A fine day to sail."),
    ("Goodbye.", "Fair winds, matey! Until we meet again."),
    ("Thank you.", "Ye be welcome, matey. Arr!"),
    ("What is your ship called?", "The Salty Sutra, the fastest ship on the sea."),
    ("Do you have a parrot?", "Aye, a green parrot named Polly sits on me shoulder."),
    ("What is your favourite food?", "Biscuits and salted fish, arr!"),
    ("Are you a pirate?", "Aye, matey! A pirate through and through."),
]

OPPOSITES = [
    ("light", "darkness"), ("day", "night"), ("good", "evil"), ("heaven", "earth"), ("life", "death"),
    ("first", "last"), ("rich", "poor"), ("high", "low"), ("old", "young"), ("wise", "foolish"),
    ("love", "hate"), ("peace", "war"), ("clean", "unclean"), ("strong", "weak"), ("give", "take"),
    ("come", "go"), ("sweet", "bitter"), ("before", "after"), ("east", "west"), ("north", "south"),
    ("king", "servant"), ("morning", "evening"), ("joy", "sorrow"), ("truth", "lie"), ("open", "shut"),
    ("up", "down"), ("begin", "end"), ("many", "few"), ("great", "small"), ("hot", "cold"),
    ("laugh", "weep"), ("build", "destroy"), ("near", "far"), ("full", "empty"), ("friend", "enemy"),
    ("summer", "winter"), ("righteous", "wicked"), ("bless", "curse"), ("sow", "reap"), ("lost", "found"),
    ("living", "dead"), ("sleep", "wake"), ("gather", "scatter"), ("within", "without"), ("above", "below"),
    ("mercy", "wrath"), ("true", "false"), ("humble", "proud"), ("slow", "swift"), ("alive", "dead"),
]

NUMBERS = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten",
           "eleven", "twelve", "thirteen", "fourteen", "fifteen", "sixteen", "seventeen", "eighteen",
           "nineteen", "twenty"]

FACTS = [
    ("Who built the ark?", "Noah"), ("Who was swallowed by a great fish?", "Jonah"),
    ("Who killed Goliath?", "David"), ("Who was the first man?", "Adam"),
    ("Who was the first woman?", "Eve"), ("Who led Israel out of Egypt?", "Moses"),
    ("Who was the strongest man?", "Samson"), ("Who was thrown into the lions' den?", "Daniel"),
    ("Who was the wisest king?", "Solomon"), ("Who was sold by his brothers?", "Joseph"),
    ("Who was the father of Isaac?", "Abraham"), ("Who was the mother of Samuel?", "Hannah"),
    ("Who denied Jesus three times?", "Peter"), ("Who betrayed Jesus?", "Judas"),
    ("Who baptized Jesus?", "John"), ("Who was the brother of Moses?", "Aaron"),
    ("Who was the first king of Israel?", "Saul"), ("Who was Isaac's son?", "Jacob"),
    ("Who was Ruth's mother-in-law?", "Naomi"), ("Who was the wife of Abraham?", "Sarah"),
    ("On which mountain did Moses receive the law?", "Sinai"), ("In which garden did Adam live?", "Eden"),
    ("Which sea did Israel cross?", "Red"), ("Which river was Jesus baptized in?", "Jordan"),
    ("In which town was Jesus born?", "Bethlehem"), ("How many days did it rain on the ark?", "Forty"),
    ("How many tribes had Israel?", "Twelve"), ("How many disciples had Jesus?", "Twelve"),
    ("How many commandments were given?", "Ten"), ("What did God make on the first day?", "Light"),
]

PROVERBS = [
    "A wise programmer saveth his work before he compileth.",
    "He that testeth not his code shall weep in the night.",
    "The patient engineer readeth the error message unto the end.",
    "A merry heart maketh a clean commit.",
    "Better is a small program that runneth than a great one that crasheth.",
    "The fool deleteth the backup; the prudent keepeth three.",
    "As a dog returneth to his vomit, so a careless man returneth to the same bug.",
    "Pride goeth before a failed build.",
    "He that keepeth his logs keepeth his peace.",
    "A soft reply turneth away the angry reviewer.",
    "The slothful man saith, I shall write the documentation tomorrow.",
    "Where no tests are, the release cometh to ruin.",
    "The diligent hand maketh the benchmark swift.",
    "Train up a model in the way it should go, and when it is old it will not depart from it.",
    "A good loss curve is better than great riches.",
    "He that watcheth the gradient shall not be surprised by the NaN.",
    "Every checkpoint written in haste is a trap for the morrow.",
    "The wise man readeth the licence; the fool copieth the code.",
    "A faithful test is a shelter in the storm.",
    "Let thy commits be small and thy messages honest.",
    "The lazy man leaveth warnings in his build, and they multiply.",
    "Cast thy cache upon the disk, for thou shalt find it after many days.",
    "A word fitly spoken is like a function fitly named.",
    "He that hasteth to optimise before he measureth shall be ashamed.",
    "Two cores are better than one, for they have a good reward for their labour.",
    "The memory that groweth without bound bringeth the whole house down.",
    "Iron sharpeneth iron; so a reviewer sharpeneth the code of his friend.",
    "A gentle timeout turneth away a hanging thread.",
    "The prudent man seeth the deadlock and hideth himself; the simple pass on and are punished.",
    "Through wisdom is a parser builded, and by understanding it is established.",
    "Go to the profiler, thou sluggard; consider her ways, and be wise.",
    "The beginning of wisdom is a failing test.",
    "A continual dripping on a rainy day and a flaky test are alike.",
    "Whoso loveth instruction loveth knowledge; but he that hateth the linter is brutish.",
    "Boast not thyself of tomorrow's release, for thou knowest not what a day may bring forth.",
    "The crash that is written to the log is better than the crash that is silent.",
    "A file half written is an abomination; the atomic rename is his delight.",
    "In the multitude of threads there wanteth not a race.",
    "Keep thy secrets out of thy logs, for the logs are read by many.",
    "He that buildeth on a fresh machine buildeth on the rock.",
]


def main():
    out = sys.argv[1]
    rng = random.Random(7)
    # chat: a pirate persona (loss on the assistant turns)
    with open(out + "/pirate-chat.jsonl", "w") as f:
        for _ in range(4):
            for q, a in PIRATE:
                f.write(json.dumps({"messages": [{"role": "user", "content": q},
                                                 {"role": "assistant", "content": a}]}) + "\n")
    # text: modern proverbs in the King James manner (loss on every token)
    with open(out + "/proverbs.jsonl", "w") as f:
        for p in PROVERBS:
            f.write(json.dumps({"text": p}) + "\n")
    with open(out + "/proverbs.txt", "w") as f:
        f.write("\n".join(PROVERBS) + "\n")
    # prompt/completion: numbers in words (loss on the completion)
    with open(out + "/number-words.jsonl", "w") as f:
        rows = [{"prompt": "Write the number %d in words: " % i, "completion": NUMBERS[i]} for i in range(len(NUMBERS))]
        for _ in range(3):
            rng.shuffle(rows)
            for r in rows:
                f.write(json.dumps(r) + "\n")
    # Alpaca: one-word answers about the Bible (loss on the output)
    with open(out + "/bible-facts-alpaca.json", "w") as f:
        rows = [{"instruction": "Answer with one word.", "input": q, "output": a} for q, a in FACTS]
        json.dump(rows, f, indent=1)
        f.write("\n")
    # CSV with a header: opposites as prompt,completion
    with open(out + "/opposites.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["prompt", "completion"])
        for a, b in OPPOSITES:
            w.writerow(["The opposite of %s is" % a, " " + b])
            w.writerow(["The opposite of %s is" % b, " " + a])


if __name__ == "__main__":
    main()
