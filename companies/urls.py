from django.urls import path

from companies import apis

urlpatterns = [
    path("auth/login", apis.LoginApi.as_view(), name="auth-login"),
    path("auth/refresh", apis.RefreshApi.as_view(), name="auth-refresh"),
    path("auth/logout", apis.LogoutApi.as_view(), name="auth-logout"),
    path("auth/change-password", apis.ChangePasswordApi.as_view(), name="auth-change-password"),
    path("auth/forgot-password", apis.ForgotPasswordApi.as_view(), name="auth-forgot-password"),
    path("auth/reset-password", apis.ResetPasswordApi.as_view(), name="auth-reset-password"),
    path("auth/session-status", apis.SessionStatusApi.as_view(), name="auth-session-status"),
    path("caterings", apis.CateringCollectionApi.as_view(), name="caterings"),
    path("caterings/<str:company_id>", apis.CateringDetailApi.as_view(), name="catering-detail"),
    path("clients", apis.ClientCollectionApi.as_view(), name="clients"),
    path("clients/<str:company_id>", apis.ClientDetailApi.as_view(), name="client-detail"),
    path("users", apis.UserCollectionApi.as_view(), name="users"),
    path("users/<str:user_id>", apis.UserDetailApi.as_view(), name="user-detail"),
    path("seed", apis.SeedApi.as_view(), name="seed"),
]
