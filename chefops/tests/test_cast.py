import pytest

from companies.models import CompanyType, Role


@pytest.mark.django_db
def test_cast_tokens_authenticate_each_user(cast) -> None:
    assert cast.catering.company.company_type == CompanyType.CATERING
    assert cast.client.company.company_type == CompanyType.CLIENT
    assert cast.client.user(Role.MANAGER).role == Role.MANAGER
    # No company route exists yet in this app; the probe is an unknown /api route that needs no
    # auth, so check the token against the authentication class directly through DRF.
    from rest_framework.test import APIRequestFactory

    from companies.authentication import JWTAuthentication

    for user in (cast.catering.admin, cast.other_client.employee):
        request = APIRequestFactory().get(
            "/", HTTP_AUTHORIZATION=cast.api(user)._credentials["HTTP_AUTHORIZATION"]
        )
        authenticated, claims = JWTAuthentication().authenticate(request)  # type: ignore[misc]
        assert authenticated == user
        assert claims["companyType"] == user.company.company_type


@pytest.mark.django_db
def test_token_of_inactive_user_or_company_is_rejected(cast) -> None:
    from rest_framework.exceptions import AuthenticationFailed
    from rest_framework.test import APIRequestFactory

    from companies.authentication import JWTAuthentication

    header = cast.api(cast.client.admin)._credentials["HTTP_AUTHORIZATION"]
    cast.client.company.status = "INACTIVE"
    cast.client.company.save()
    with pytest.raises(AuthenticationFailed):
        JWTAuthentication().authenticate(APIRequestFactory().get("/", HTTP_AUTHORIZATION=header))
    header = cast.api(cast.catering.manager)._credentials["HTTP_AUTHORIZATION"]
    cast.catering.manager.is_active = False
    cast.catering.manager.save()
    with pytest.raises(AuthenticationFailed):
        JWTAuthentication().authenticate(APIRequestFactory().get("/", HTTP_AUTHORIZATION=header))
