"""Read-cache invalidation (chefops.readcache) for every model write that goes through
``save`` (and ``delete`` of contracts and companies): services, the admin, fixtures and
restores. The other write paths (queryset ``update``/``delete``/``bulk_*``, ``delete`` of a
weekday or a service day, raw SQL) invalidate in ``chefops/cachewrites.py``."""

from __future__ import annotations

from typing import Any

from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver

from chefops import cachewrites
from companies.models import Company
from contracts.models import Contract, ContractWeekday
from servicedays.models import ServiceDay


def _contract_parties(contract_id: Any) -> list[Any]:
    parties = (
        Contract.objects.filter(pk=contract_id)
        .values_list("catering_company_id", "client_company_id")
        .first()
    )
    return list(parties) if parties else []


# Saves only: a delete listener would stop Django from deleting these (big) tables' rows in
# bulk when their contract goes (it would load every row to signal it); the contract's own
# delete signal covers those, and the models' delete() and querysets the others.
@receiver(post_save, sender=ServiceDay)
def service_day_changed(sender: Any, instance: ServiceDay, **kwargs: Any) -> None:
    # Its contract's range and report, and its parties' finance metrics; not their other
    # contracts' reads nor their contract lists.
    if cachewrites.active():
        cachewrites.service_days_changed([instance.contract_id], _parties(instance))


@receiver(post_save, sender=ContractWeekday)
def weekday_changed(sender: Any, instance: ContractWeekday, **kwargs: Any) -> None:
    # The weekdays show in both parties' contract lists.
    if cachewrites.active():
        cachewrites.contracts_changed(_parties(instance))


def _parties(instance: ServiceDay | ContractWeekday) -> list[Any]:
    contract = instance._state.fields_cache.get("contract")
    if contract is not None:
        return [contract.catering_company_id, contract.client_company_id]
    return _contract_parties(instance.contract_id)


@receiver([post_save, post_delete], sender=Contract)
def contract_changed(sender: Any, instance: Contract, **kwargs: Any) -> None:
    cachewrites.contracts_changed([instance.catering_company_id, instance.client_company_id])


@receiver([post_save, post_delete], sender=Company)
def company_changed(sender: Any, instance: Company, **kwargs: Any) -> None:
    # Its name shows in its partners' contract lists, reports and finance metrics.
    cachewrites.contracts_changed(None)
