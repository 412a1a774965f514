#!/usr/bin/env python
"""Generate the embedded quickstart dataset (3-class product-review sentiment).

All text is composed here from hand-written templates; nothing is copied from
third-party corpora. The output is deterministic: rerunning the script
reproduces the CSV files byte-for-byte.

Usage:
    python scripts/make_quickstart_data.py            # (re)write the CSVs
    python scripts/make_quickstart_data.py --check    # also print baselines
    python scripts/make_quickstart_data.py --check --no-write   # baselines only

Writes tfslm/resources/quickstart_{train,validation,test}.csv with columns
``text,label`` and labels ``negative``, ``neutral``, ``positive``.
"""

from __future__ import annotations

import argparse
import csv
import random
import sys
from collections import Counter
from pathlib import Path

SEED = 20240517
LABELS = ("negative", "neutral", "positive")
# Share of each class before label noise (positive 40%, negative 35%, neutral 25%).
CLASS_SHARE = {"positive": 0.40, "negative": 0.35, "neutral": 0.25}
SPLIT_SIZES = {"train": 2400, "validation": 300, "test": 300}
NOISE_RATE = 0.05

ROOT = Path(__file__).resolve().parents[1]
OUT_DIR = ROOT / "tfslm" / "resources"

# ---------------------------------------------------------------------------
# Vocabulary: products and their aspects
# ---------------------------------------------------------------------------

# product name -> (kind, aspects). The kind picks suitable opening sentences.
PRODUCTS: dict[str, tuple[str, list[str]]] = {
    "headphones": ("gadget", ["sound", "battery", "noise cancelling", "fit", "build quality", "price", "bluetooth connection"]),
    "earbuds": ("gadget", ["sound", "battery", "fit", "charging case", "microphone", "price"]),
    "coffee maker": ("kitchen", ["coffee", "brewing speed", "water tank", "build quality", "price", "cleaning"]),
    "kettle": ("kitchen", ["boiling speed", "lid", "build quality", "price", "noise level"]),
    "blender": ("kitchen", ["motor", "jug", "noise level", "blades", "cleaning", "price"]),
    "backpack": ("gear", ["zippers", "straps", "stitching", "pockets", "material", "price"]),
    "tent": ("gear", ["poles", "waterproofing", "setup", "zippers", "size", "price"]),
    "water bottle": ("gear", ["lid", "insulation", "seal", "size", "price"]),
    "running shoes": ("gear", ["cushioning", "fit", "grip", "laces", "durability", "price"]),
    "phone case": ("gadget", ["grip", "fit", "material", "button covers", "price"]),
    "smartwatch": ("gadget", ["battery", "screen", "strap", "app", "step counter", "price"]),
    "bluetooth speaker": ("gadget", ["sound", "battery", "volume", "bass", "bluetooth connection", "price"]),
    "keyboard": ("gadget", ["keys", "typing feel", "backlight", "cable", "price"]),
    "desk lamp": ("home", ["brightness", "switch", "base", "cable", "price"]),
    "vacuum cleaner": ("home", ["suction", "battery", "filter", "noise level", "attachments", "price"]),
    "office chair": ("home", ["comfort", "armrests", "assembly", "wheels", "back support", "price"]),
    "laptop stand": ("home", ["stability", "height adjustment", "build quality", "price"]),
    "face cream": ("home", ["texture", "scent", "packaging", "results", "price"]),
    "board game": ("home", ["rules", "components", "replay value", "artwork", "price"]),
    "novel": ("book", ["plot", "characters", "ending", "writing", "pacing", "dialogue"]),
    "cookbook": ("cookbook", ["recipes", "photos", "instructions", "layout", "price"]),
    "hotel stay": ("hotel", ["staff", "room", "breakfast", "location", "bed", "wifi", "check-in"]),
    "restaurant meal": ("restaurant", ["food", "service", "portions", "waiting time", "price", "staff"]),
    "online course": ("course", ["videos", "exercises", "instructor", "pacing", "price"]),
}

PLURAL_PRODUCTS = {"headphones", "earbuds", "running shoes"}
# Aspects that take a plural verb.
PLURAL_ASPECTS = {
    "zippers", "straps", "pockets", "characters", "recipes", "photos",
    "instructions", "button covers", "blades", "armrests", "wheels", "rules",
    "components", "portions", "poles", "keys", "results", "videos",
    "exercises", "laces", "attachments", "staff",
}
# Shipping/service aspects that apply to anything that is delivered.
SERVICE_ASPECTS = ["delivery", "packaging", "customer service"]
# Aspects that only ever use their dedicated phrasings (see SPECIAL_ASPECT).
SPECIAL_ONLY = {"price", "delivery"}
SHIPPED_KINDS = {"gadget", "kitchen", "gear", "home"}
BOOK_KINDS = {"book", "cookbook"}


def be(aspect: str) -> str:
    return "are" if aspect in PLURAL_ASPECTS else "is"


def was(aspect: str) -> str:
    return "were" if aspect in PLURAL_ASPECTS else "was"


def this(product: str) -> str:
    return "these" if product in PLURAL_PRODUCTS else "this"


def it(product: str) -> str:
    return "they" if product in PLURAL_PRODUCTS else "it"


def them(product: str) -> str:
    return "them" if product in PLURAL_PRODUCTS else "it"


# ---------------------------------------------------------------------------
# Sentiment phrases
# ---------------------------------------------------------------------------

POS_ADJ = ["great", "excellent", "fantastic", "superb", "brilliant", "impressive",
           "lovely", "outstanding", "spot on", "wonderful", "solid", "really good"]
NEG_ADJ = ["terrible", "awful", "poor", "disappointing", "a letdown", "useless",
           "horrible", "dreadful", "really bad", "weak", "frustrating", "subpar"]
NEU_ADJ = ["okay", "fine", "average", "decent enough", "acceptable", "so-so",
           "alright", "passable", "mediocre", "reasonable", "standard", "ordinary"]
# Mild words used inside negations ("not great", "not terrible").
MILD_POS = ["great", "good", "impressive", "amazing", "special"]
MILD_NEG = ["bad", "terrible", "awful", "a problem"]

# Overall verdicts; {this} {p} {it} {them} are filled in per product.
POS_OVERALL = [
    "I love {them}.", "Absolutely love {this} {p}.", "Highly recommend.",
    "Best {p} I have owned.", "Worth every penny.", "Would buy again without hesitation.",
    "Exceeded my expectations.", "Really happy with this purchase.",
    "Five stars from me.", "Not bad at all, actually very good.",
    "I can't complain about anything.", "Couldn't be happier.",
    "A real pleasure.", "My whole family loves {them}.",
    "Easily the best money I spent this year.", "I would recommend {them} to anyone.",
    "{It} never let me down.", "Pleasantly surprised by how good {it} turned out to be.",
    "No regrets at all.", "Great value for money.", "I would not change a thing.",
    "Can't fault {them}.",
]
NEG_OVERALL = [
    "I regret buying {them}.", "Not worth the money.", "Would not recommend.",
    "Worst {p} I have ever had.", "Complete waste of money.", "I am asking for a refund.",
    "Very disappointed.", "Avoid.", "One star, and that is generous.",
    "Not good at all.", "Save your money.", "I expected much better.",
    "Never again.", "Really annoyed with this purchase.",
    "Nothing like what was promised.", "I would not buy {them} again.",
    "Total letdown.", "A frustrating experience from start to finish.",
    "I can't recommend {them}.", "Not great, to be honest.",
]
NEU_OVERALL = [
    "It's okay.", "Does the job, nothing special.", "Average overall.",
    "Not great, not terrible.", "Fine for the price.", "Pretty middle of the road.",
    "Neither impressed nor disappointed.", "It works, I suppose.",
    "About what I expected, no more and no less.", "Three stars feels right.",
    "Nothing to write home about.", "A very average {p}.", "Meh, it's alright.",
    "I have mixed feelings.", "Serves its purpose.",
    "Some good points, some bad ones.", "Not sure I would buy {them} again, but {it} will do.",
    "Fine for occasional use.", "Not as good as the hype, but not bad either.",
    "Perfectly ordinary.", "Could be better, could be worse.",
]

POS_ASPECT = [
    "The {a} {be} {pos}.", "The {a} {be} {pos} and better than I hoped.",
    "I was impressed by the {a}.", "The {a} {be} honestly {pos}.",
    "The {a} {was} {pos} from day one.", "The {a} could not be better.",
    "Nothing wrong with the {a}, {pron} {be} {pos}.", "The {a} {be} not bad at all.",
    "Loved the {a}.", "No complaints about the {a}.",
    "Never had a problem with the {a}.", "The {a} {be} far from {neg_mild}, {pron} {be} {pos}.",
]
NEG_ASPECT = [
    "The {a} {be} {neg}.", "The {a} {be} {neg} and getting worse.",
    "I was let down by the {a}.", "The {a} {be} honestly {neg}.",
    "The {a} {was} {neg} from day one.", "The {a} could hardly be worse.",
    "The {a} {be} not good at all.", "Hated the {a}.",
    "The {a} {be} not {pos_mild} at all.", "I can't say the {a} impressed me.",
    "The {a} {be} nowhere near as {pos_mild} as advertised.", "Big problems with the {a}.",
]
NEU_ASPECT = [
    "The {a} {be} {neu}.", "The {a} {be} {neu}, nothing more.",
    "The {a} {be} about average.", "The {a} {be} {neu}, I guess.",
    "The {a} {be} neither good nor bad.", "The {a} {was} {neu} for what {pron} {be}.",
    "The {a} {be} {neu} but not remarkable.", "Can't say much about the {a}, {pron} {be} {neu}.",
    "The {a} {be} what you would expect.", "The {a} {be} {neu} most of the time.",
    "The {a} {be} not {pos_mild}, but not {neg_mild} either.",
]

# Aspect-specific phrasings (used instead of the generic ones about half the time).
SPECIAL_ASPECT = {
    "price": {
        "positive": ["The price is very fair.", "Great price for what you get.",
                     "It was a bargain at that price.", "Cheaper than the competition and better."],
        "negative": ["The price is far too high for what you get.", "Way overpriced.",
                     "At that price I expected a lot more.", "The price is a joke."],
        "neutral": ["The price is about what you would expect.", "The price is fair, nothing more.",
                    "Reasonably priced, I guess.", "Not cheap, not expensive."],
    },
    "delivery": {
        "positive": ["Delivery was quick.", "It arrived a day early.", "Fast delivery and well packed."],
        "negative": ["Delivery took almost three weeks.", "It arrived late and the box was crushed.",
                     "The delivery was a mess."],
        "neutral": ["Delivery took about a week, which is normal.", "Delivery was on time, nothing more to say.",
                    "Delivery was neither fast nor slow."],
    },
    "battery": {
        "positive": ["The battery lasts for days.", "Battery life is excellent."],
        "negative": ["The battery dies within a few hours.", "Battery life is awful."],
        "neutral": ["Battery life is average.", "The battery gets me through a day, just about."],
    },
    "staff": {
        "positive": ["The staff were friendly and helpful.", "The staff went out of their way for us."],
        "negative": ["The staff were rude.", "The staff ignored us most of the time."],
        "neutral": ["The staff were polite but a bit distant.", "The staff did their job, nothing more."],
    },
    "plot": {
        "positive": ["The plot kept me hooked until the last page.", "A gripping plot."],
        "negative": ["The plot goes nowhere.", "The plot is predictable and dull."],
        "neutral": ["The plot is fairly predictable but readable.", "The plot is average for the genre."],
    },
}

OPENERS = {
    "generic": ["Bought {this} {p} last month.", "I got {this} {p} as a gift.",
                "Ordered the {p} after reading a few reviews.", "Been using {this} {p} for a few weeks now.",
                "Picked up {this} {p} on sale.", "My partner chose {this} {p}.",
                "I have had {this} {p} for about three months.", "I have bought from this brand before.",
                "Replaced my old {p} with {this_one}.",
                "I have used the {p} almost every day since {it} arrived."],
    "gear": ["Took the {p} on a hiking trip.", "Needed new gear for a long trip, so I got {this} {p}."],
    "gadget": ["Needed {this} {p} for work.", "Upgraded to {this} {p} from a cheaper model."],
    "kitchen": ["Bought {this} {p} for our new kitchen.", "I use the {p} every morning."],
    "book": ["Read {this} {p} over a long weekend.", "Our book club picked {this} {p}.",
             "I finished the {p} in two sittings.", "Started the {p} on a long train journey."],
    "cookbook": ["Cooked from {this} {p} for a month.", "I got {this} {p} to learn some new dishes."],
    "hotel": ["We stayed two nights.", "Booked this hotel for a weekend away.",
              "Stayed here for a work trip.", "We spent a week here in the summer."],
    "restaurant": ["We went there for a birthday dinner.", "Had lunch here with colleagues.",
                   "Tried this place on a Friday night."],
    "course": ["I signed up for this course in the spring.", "Took this course to learn something new.",
               "Finished the course last week."],
}
PLACE_KINDS = {"hotel", "restaurant", "course"}

FILLERS = [
    "I am not usually one to write reviews.", "I compared a few options first.",
    "This is my honest opinion.", "I paid the full price.",
    "I am writing this after about a month.", "A friend recommended it to me.",
    "Just my two cents.", "Your mileage may vary.",
]
OBJECT_FILLERS = ["It came in a plain brown box.", "The colour is a dark grey.",
                  "My brother has the same one.", "It arrived on a Tuesday."]

# Mixed constructions, used mostly for neutral reviews.
MIXED = [
    "The {a1} {be1} {pos}, but the {a2} {be2} {neg}.",
    "The {a1} {be1} {neg}, although the {a2} {be2} {pos}.",
    "Good {a1}, bad {a2}.",
    "Loved the {a1}, not a fan of the {a2}.",
    "The {a1} {be1} {pos}; the {a2}, less so.",
    "On the plus side, the {a1} {be1} {pos}. On the other hand, the {a2} {be2} {neg}.",
]
# Positive review with a minor complaint.
POS_CAVEAT = [
    "Only downside is the {a}, which {be} a bit {neu}.",
    "The {a} could be better, but that is a small thing.",
    "My one minor gripe is the {a}.",
]
# Negative review with a small compliment.
NEG_CAVEAT = [
    "The {a} {be} fine, but that does not make up for the rest.",
    "At least the {a} {be} okay.",
    "I will give {them} this: the {a} {be} decent.",
]


def aspects_for(rng: random.Random, product: str) -> list[str]:
    kind, aspects = PRODUCTS[product]
    pool = list(aspects)
    if kind in SHIPPED_KINDS:
        pool += SERVICE_ASPECTS
    elif kind in BOOK_KINDS:
        pool.append("delivery")
    rng.shuffle(pool)
    return pool


def fill(tpl: str, product: str) -> str:
    return tpl.format(p=product, this=this(product), it=it(product), them=them(product),
                      It=capitalize(it(product)),
                      this_one="these" if product in PLURAL_PRODUCTS else "this one")


def opener(rng: random.Random, product: str) -> str:
    kind = PRODUCTS[product][0]
    pool = list(OPENERS.get(kind, []))
    if kind in SHIPPED_KINDS:
        pool += OPENERS["generic"]
    return fill(rng.choice(pool), product)


def aspect_sentence(rng: random.Random, label: str, aspect: str) -> str:
    special = SPECIAL_ASPECT.get(aspect)
    if special and (aspect in SPECIAL_ONLY or rng.random() < 0.6):
        return rng.choice(special[label])
    tpl = rng.choice({"positive": POS_ASPECT, "negative": NEG_ASPECT, "neutral": NEU_ASPECT}[label])
    return tpl.format(
        a=aspect, be=be(aspect), was=was(aspect),
        pron="they" if aspect in PLURAL_ASPECTS else "it",
        pos=rng.choice(POS_ADJ), neg=rng.choice(NEG_ADJ), neu=rng.choice(NEU_ADJ),
        pos_mild=rng.choice(MILD_POS), neg_mild=rng.choice(MILD_NEG[:3]),
    )


def overall_sentence(rng: random.Random, label: str, product: str) -> str:
    pool = {"positive": POS_OVERALL, "negative": NEG_OVERALL, "neutral": NEU_OVERALL}[label]
    return fill(rng.choice(pool), product)


def mixed_sentence(rng: random.Random, a1: str, a2: str) -> str:
    return rng.choice(MIXED).format(
        a1=a1, a2=a2, be1=be(a1), be2=be(a2),
        pos=rng.choice(POS_ADJ), neg=rng.choice(NEG_ADJ),
    )


def capitalize(s: str) -> str:
    return s[:1].upper() + s[1:]


def compose(rng: random.Random, label: str) -> str:
    """Compose one review: 1-3 opinion sentences, optionally an opener and a filler."""
    product = rng.choice(sorted(PRODUCTS))
    aspects = aspects_for(rng, product)
    n_core = rng.choices([1, 2, 3], weights=[3, 5, 3])[0]
    core: list[str] = []

    if label == "neutral":
        r = rng.random()
        if r < 0.4:
            a1, a2 = [a for a in aspects if a not in SPECIAL_ONLY][:2]
            aspects = [a for a in aspects if a not in (a1, a2)]
            core.append(mixed_sentence(rng, a1, a2))
        elif r < 0.8:
            core.append(aspect_sentence(rng, "neutral", aspects.pop(0)))
        while len(core) < n_core - 1:
            core.append(aspect_sentence(rng, "neutral", aspects.pop(0)))
        if not core or rng.random() < 0.75:
            core.append(overall_sentence(rng, "neutral", product))
    else:
        other = "negative" if label == "positive" else "positive"
        for _ in range(max(n_core - 1, 1)):
            core.append(aspect_sentence(rng, label, aspects.pop(0)))
        if rng.random() < 0.6 or n_core == 1:
            core.append(overall_sentence(rng, label, product))
        # A minor counterpoint keeps the classes from being trivially separable.
        r = rng.random()
        if r < 0.15:
            caveat = POS_CAVEAT if label == "positive" else NEG_CAVEAT
            a = aspects.pop(0)
            sentence = rng.choice(caveat).format(a=a, be=be(a), neu=rng.choice(NEU_ADJ), them=them(product))
            core.insert(rng.randrange(1, len(core) + 1), sentence)
        elif r < 0.25:
            core.insert(1, aspect_sentence(rng, other, aspects.pop(0)))
        elif r < 0.30:
            core.insert(1, aspect_sentence(rng, "neutral", aspects.pop(0)))
        if rng.random() < 0.4:
            rng.shuffle(core)
        core = core[:3]

    sentences = core
    kind = PRODUCTS[product][0]
    if rng.random() < 0.45:
        sentences = [opener(rng, product)] + sentences
    if rng.random() < 0.12:
        pool = FILLERS + (OBJECT_FILLERS if kind in SHIPPED_KINDS else [])
        sentences.insert(rng.randrange(1, len(sentences) + 1), rng.choice(pool))
    text = " ".join(capitalize(s) for s in sentences)
    # Name the product when no sentence does, most of the time.
    if product not in text and rng.random() < 0.6:
        first = text if text.startswith(("I ", "I'")) else text[0].lower() + text[1:]
        text = f"About the {product}: {first}"
    return text


def label_plan(rng: random.Random, n: int) -> list[str]:
    counts = {lab: round(n * share) for lab, share in CLASS_SHARE.items()}
    counts["neutral"] += n - sum(counts.values())
    plan = [lab for lab in LABELS for _ in range(counts[lab])]
    rng.shuffle(plan)
    return plan


def generate() -> dict[str, list[tuple[str, str]]]:
    rng = random.Random(SEED)
    seen: dict[str, None] = {}  # ordered, deterministic dedup across all splits
    splits: dict[str, list[tuple[str, str]]] = {}
    for split, n in SPLIT_SIZES.items():
        rows: list[tuple[str, str]] = []
        for label in label_plan(rng, n):
            for _ in range(1000):
                text = compose(rng, label)
                n_words = len(text.split())
                if text not in seen and 6 <= n_words <= 45:
                    break
            else:  # pragma: no cover - vocabulary is large enough
                raise RuntimeError("could not compose a fresh review")
            seen[text] = None
            if rng.random() < NOISE_RATE:
                label = rng.choice([lab for lab in LABELS if lab != label])
            rows.append((text, label))
        splits[split] = rows
    return splits


def write(splits: dict[str, list[tuple[str, str]]]) -> list[Path]:
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    paths = []
    for split, rows in splits.items():
        path = OUT_DIR / f"quickstart_{split}.csv"
        with open(path, "w", encoding="utf-8", newline="") as fh:
            w = csv.writer(fh, quoting=csv.QUOTE_MINIMAL, lineterminator="\n")
            w.writerow(["text", "label"])
            w.writerows(rows)
        paths.append(path)
    return paths


def check(splits: dict[str, list[tuple[str, str]]]) -> None:
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import accuracy_score

    train, test = splits["train"], splits["test"]
    x_tr, y_tr = [t for t, _ in train], [y for _, y in train]
    x_te, y_te = [t for t, _ in test], [y for _, y in test]
    majority = Counter(y_tr).most_common(1)[0][0]
    maj_acc = sum(y == majority for y in y_te) / len(y_te)
    vec = TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True, min_df=1)
    clf = LogisticRegression(max_iter=2000, C=4.0)
    clf.fit(vec.fit_transform(x_tr), y_tr)
    acc = accuracy_score(y_te, clf.predict(vec.transform(x_te)))
    print(f"majority-class ({majority}) accuracy on test: {maj_acc:.3f}")
    print(f"TF-IDF (1-2 grams) + LogisticRegression accuracy on test: {acc:.3f}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--check", action="store_true",
                    help="print majority-class and TF-IDF+LogisticRegression test accuracy")
    ap.add_argument("--no-write", action="store_true", help="do not write the CSV files")
    args = ap.parse_args(argv)

    splits = generate()
    for split, rows in splits.items():
        dist = Counter(y for _, y in rows)
        words = [len(t.split()) for t, _ in rows]
        print(f"{split}: {len(rows)} rows, "
              + ", ".join(f"{lab}={dist[lab]}" for lab in LABELS)
              + f", words min/mean/max={min(words)}/{sum(words) / len(words):.1f}/{max(words)}")
    if not args.no_write:
        for path in write(splits):
            print(f"wrote {path.relative_to(ROOT)} ({path.stat().st_size} bytes)")
    if args.check:
        check(splits)
    return 0


if __name__ == "__main__":
    sys.exit(main())
