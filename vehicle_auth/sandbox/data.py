"""Deterministic fake Smartcar accounts: the same login email always has the same cars."""

from __future__ import annotations

import hashlib
import re
import uuid
from dataclasses import dataclass

NAMESPACE = uuid.UUID("6f1c1f4e-4a43-4d6b-9a36-8f0d8a3b7c21")

# Brand list of the Connect screens: make -> models; the first model is what an ordinary
# test-mode login gets (Smartcar's test mode gives a Chevrolet owner a Volt).
MAKES: dict[str, tuple[str, ...]] = {
    "AUDI": ("e-tron", "Q4 e-tron"),
    "BMW": ("i3", "iX", "i4"),
    "CHEVROLET": ("Volt", "Bolt EV", "Equinox EV"),
    "FORD": ("Mustang Mach-E", "F-150 Lightning"),
    "HYUNDAI": ("Ioniq 5", "Kona Electric"),
    "JAGUAR": ("I-PACE",),
    "KIA": ("EV6", "Niro EV"),
    "NISSAN": ("Leaf", "Ariya"),
    "RIVIAN": ("R1T", "R1S"),
    "TESLA": ("Model S", "Model 3", "Model X", "Model Y"),
    "TOYOTA": ("RAV4 Prime", "bZ4X"),
    "VOLKSWAGEN": ("ID.4", "e-Golf"),
}

# Test-mode special logins (SMARTCAR.md §1).
INCOMPATIBLE_EMAIL = "smartcar@vehicle-incompatible.com"
INVALID_SUBSCRIPTION_EMAIL = "smartcar@invalid-subscription.com"
N_VEHICLES_EMAIL = re.compile(r"^(\d{1,3})-vehicles@smartcar\.com$", re.IGNORECASE)
MAX_VEHICLES = 999

# Characters a VIN may use (no I, O or Q).
_VIN_ALPHABET = "ABCDEFGHJKLMNPRSTUVWXYZ0123456789"


@dataclass(frozen=True)
class FakeVehicle:
    vehicle_id: str
    make: str
    model: str
    year: int
    vin: str
    odometer: float


def _digest(*parts: object) -> bytes:
    return hashlib.sha256("|".join(str(p) for p in parts).encode()).digest()


def user_id_for(email: str) -> str:
    """The Smartcar user id behind a login email."""
    return str(uuid.uuid5(NAMESPACE, f"user|{email.strip().lower()}"))


def vehicle_count_for(email: str) -> int:
    """How many cars the account behind `email` has (`<n>-vehicles@smartcar.com` gives n)."""
    match = N_VEHICLES_EMAIL.match(email.strip())
    if match:
        return min(int(match.group(1)), MAX_VEHICLES)
    return 1


def vehicles_for(email: str, make: str) -> list[FakeVehicle]:
    """The cars of the account behind `email` at brand `make`, always the same ones."""
    email = email.strip().lower()
    make = make.upper()
    cars = []
    for index in range(vehicle_count_for(email)):
        digest = _digest(email, make, index)
        if index == 0:
            car_make, car_model = make, MAKES.get(make, ("Vehicle",))[0]
        else:
            # A many-vehicle account holds a mix of the brand's models.
            models = MAKES.get(make, ("Vehicle",))
            car_make, car_model = make, models[digest[1] % len(models)]
        vin = "".join(_VIN_ALPHABET[b % len(_VIN_ALPHABET)] for b in digest[4:21])
        cars.append(
            FakeVehicle(
                vehicle_id=str(uuid.uuid5(NAMESPACE, f"vehicle|{email}|{make}|{index}")),
                make=car_make,
                model=car_model,
                year=2014 + digest[2] % 11,
                vin=vin,
                odometer=round(1000 + int.from_bytes(digest[21:24], "big") % 150000 + 0.32, 2),
            )
        )
    return cars
