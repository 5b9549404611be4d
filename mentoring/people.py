"""A sample population for the demo: mentors and mentees with plausible skills. Pure."""

from __future__ import annotations

import random
from dataclasses import dataclass

FIRST = [
    "Ada",
    "Ben",
    "Chloe",
    "Dev",
    "Elena",
    "Farid",
    "Grace",
    "Hiro",
    "Ines",
    "Jonas",
    "Kemi",
    "Liam",
    "Maya",
    "Noor",
    "Omar",
    "Priya",
    "Quinn",
    "Rosa",
    "Sami",
    "Tara",
]
LAST = [
    "Okafor",
    "Schmidt",
    "Tanaka",
    "Silva",
    "Nguyen",
    "Kowalski",
    "Haddad",
    "Moreau",
    "Larsen",
    "Patel",
    "Rossi",
    "Mensah",
    "Ivanova",
    "Garcia",
    "Chen",
]
SKILLS = [
    "python",
    "leadership",
    "public speaking",
    "data analysis",
    "negotiation",
    "product management",
    "cloud",
    "career planning",
    "finance",
    "ux design",
    "people management",
    "sql",
]


@dataclass(frozen=True, slots=True)
class Person:
    role: str
    display_name: str
    email: str
    skills: tuple[str, ...]
    capacity: int


def sample_people(mentors: int, mentees: int, seed: int) -> list[Person]:
    rng = random.Random(seed)
    # Popular skills are sought more than they are offered, as in real programs.
    weights = [len(SKILLS) - i for i in range(len(SKILLS))]
    people = []
    for index in range(mentors + mentees):
        role = "mentor" if index < mentors else "mentee"
        first, last = rng.choice(FIRST), rng.choice(LAST)
        skills: dict[str, None] = {}
        while len(skills) < rng.randint(2, 4):
            skills.setdefault(rng.choices(SKILLS, weights)[0], None)
        people.append(
            Person(
                role=role,
                display_name=f"{first} {last}",
                email=f"{first}.{last}.{index}@example.org".lower(),
                skills=tuple(skills),
                capacity=rng.randint(2, 4) if role == "mentor" else 0,
            )
        )
    return people
