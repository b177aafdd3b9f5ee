"""The errors of the git layer: each is a ``GitError`` and also the core error that says
how a caller should react (fix the input, or retry later)."""

from __future__ import annotations

from mastra_admin.core.errors import InvalidInput, MastraAdminError, PayloadTooLarge, Unavailable

__all__ = [
    "CommitNotFound",
    "GitError",
    "GitHostUnreachable",
    "GitTimeout",
    "RefNotFound",
    "RepositoryTooLarge",
    "RepositoryUnreadable",
    "UnsafeTree",
]


class GitError(MastraAdminError):
    """git failed in a way this layer does not recognise (its stderr, masked, is in
    ``details["stderr"]``). Every other error here is a ``GitError`` too."""

    code = "git_failed"


class RepositoryUnreadable(GitError, InvalidInput):
    """The repository does not exist or the credential cannot read it. The two cannot be
    told apart: hosts answer "not found" for private repositories on purpose."""

    code = "git_repository_unreadable"


class RefNotFound(GitError, InvalidInput):
    """The branch or tag is not in the repository."""

    code = "git_ref_not_found"


class CommitNotFound(GitError, InvalidInput):
    """The commit is not in the repository (a force-push removed it, or it never was)."""

    code = "git_commit_not_found"


class RepositoryTooLarge(GitError, PayloadTooLarge):
    """The repository passed ``max_repository_mb`` (or its files ``max_export_mb``);
    ``details["limit"]`` is the limit in bytes."""

    code = "git_repository_too_large"


class UnsafeTree(GitError, InvalidInput):
    """A commit's tree names a path that would leave the export folder."""

    code = "git_unsafe_tree"


class GitTimeout(GitError, Unavailable):
    """git ran longer than ``fetch_timeout_s``; it was killed."""

    code = "git_timeout"


class GitHostUnreachable(GitError, Unavailable):
    """The host does not resolve, does not answer, or answers with a server error."""

    code = "git_host_unreachable"
