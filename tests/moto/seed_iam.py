#!/usr/bin/env python3
"""Seed the IAM side of one policy-verification case in a moto server that seed.py has seeded.

    python tests/moto/seed.py     --endpoint http://127.0.0.1:PORT --scenario SCENARIO
    python tests/moto/seed_iam.py --endpoint http://127.0.0.1:PORT --case NAME

Each case pairs with one seed.py scenario (its "scenario" below): the action and resource are the ones
that scenario's stop reason or log names, and the policies seeded decide whether the role may do it.
The roles are created when missing (seed.py only names them in the task definition), with an ECS
tasks trust policy. One case per moto server: a role remembers its case in the tag
`ecsdoctor-seed-case`, and a second, different case on the same role is refused. Running the same case
again changes nothing.

Prints one JSON object on stdout:
    {"case", "scenario", "role_name", "role_arn", "action", "resource",
     "expect": {"status", "decision", "layer", "sid", "policy"},
     "inline_policies", "attached_policies", "permissions_boundary",
     "default_versions": {managed policy ARN: default version id}, ...}
(plus "parameter_name", "secret_arn", "kms_key_id", "kms_key_arn", "bucket" where the case uses them).
  status    "confirmed" (the policies deny the request, as the stop reason says) or "contradicted"
  decision  "implicit-deny", "explicit-deny" or "allowed"
  layer     the policy type that denies: identity | permissions-boundary | resource | kms-key (null if allowed)
  sid       the Sid of the deciding statement: the Deny for an explicit deny, the Allow when
            contradicted; null for an implicit deny
  policy    the deciding policy: an inline policy's name, a managed policy's ARN, the key ARN for a
            key policy, the bucket ARN for a bucket policy; null when no single policy decides (an
            implicit deny among the identity policies)

Cases:
  old-version        (startup-ssm-denied) customer managed `app-secrets` attached; v1 allowed
                     ssm:GetParameters on parameter/prod/*, the default v2 allows only logs.
  boundary-cap       (startup-ssm-denied) an inline policy allows the read; the permissions boundary
                     `ecs-execution-boundary` allows only ecr:* and logs:*.
  explicit-deny      (startup-ssm-denied) managed `ssm-read-all` allows ssm:* on *; the inline
                     `deny-prod-parameters` denies parameter/prod/* (Sid DenyProdParameters).
  allowed            (startup-ssm-denied) an inline policy allows the read.
  cmk-no-delegation  (startup-secret-kms-denied) the inline policy allows secretsmanager:GetSecretValue
                     and kms:Decrypt; the key policy names only role/key-admin and has no "Enable IAM
                     User Permissions" statement for the account root. Needs that scenario seeded first.
  task-role-allowed  (runtime-s3-denied) the task role's inline policy allows s3:PutObject on the
                     bucket's reports/*; the bucket exists without a policy.
  bucket-deny        (runtime-s3-denied) as task-role-allowed, plus a bucket policy that denies
                     s3:PutObject to every principal (Sid DenyWritesDuringMigration).
The SSM cases also create the SecureString parameter (AWS managed key, KeyId alias/aws/ssm).

moto 5.2.5 answers the reads with these quirks: GetRolePolicy's document is percent-encoded, but
GetPolicyVersion's is plain JSON (AWS percent-encodes both); GetKeyPolicy needs PolicyName="default"
(without it: NotFoundException); DescribeSecret echoes KmsKeyId as given (id, ARN or alias) and sends
"KmsKeyId": null for the AWS managed key; AWS managed IAM policies (arn:aws:iam::aws:policy/...) are
not loaded, so they cannot be attached; SimulatePrincipalPolicy answers HTTP 500 (not implemented).

Only loopback endpoints are accepted, and the environment is pinned as in seed.py.
"""

import argparse
import json
import sys

import boto3
from botocore.exceptions import ClientError

# tests/moto/seed.py: importing it pins the safe environment (dummy credentials, no config files, no
# EC2 metadata) before any client is made, and shares the names its scenarios use.
import seed  # isort: skip

ACCOUNT = seed.ACCOUNT
REGION = seed.REGION
CASE_TAG = "ecsdoctor-seed-case"
ECS_TASKS_TRUST = {
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Principal": {"Service": "ecs-tasks.amazonaws.com"}, "Action": "sts:AssumeRole"}],
}
PARAMETER_ARN = seed.SSM_PARAMETER_ARN
PARAMETER_NAME = "/" + PARAMETER_ARN.split(":parameter/", 1)[1]
PROD_PARAMETERS = f"arn:aws:ssm:{REGION}:{ACCOUNT}:parameter/prod/*"
KEY_ADMIN_ARN = f"arn:aws:iam::{ACCOUNT}:role/key-admin"
# The bucket and object of the denial in seed.py's runtime-s3-denied log (app_log_lines).
BUCKET = "acme-uploads-prod"
OBJECT_ARN = f"arn:aws:s3:::{BUCKET}/reports/2026-11-23.csv"

CASES = (
    "old-version",
    "boundary-cap",
    "explicit-deny",
    "allowed",
    "cmk-no-delegation",
    "task-role-allowed",
    "bucket-deny",
)


def policy(*statements):
    return json.dumps({"Version": "2012-10-17", "Statement": list(statements)})


def allow(actions, resources, sid=None):
    stmt = {"Effect": "Allow", "Action": actions, "Resource": resources}
    return {"Sid": sid, **stmt} if sid else stmt


def expect(status, decision, layer=None, sid=None, policy_label=None):
    return {"status": status, "decision": decision, "layer": layer, "sid": sid, "policy": policy_label}


def error_code(err):
    return err.response.get("Error", {}).get("Code", "")


class Seeder:
    """The clients (made on first use: each costs ~0.1 s) and the idempotent seeding steps."""

    def __init__(self, endpoint):
        self.endpoint = endpoint
        self.session = boto3.session.Session(
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
            aws_session_token="testing",
            region_name=REGION,
        )
        self.clients = {}
        self.inline = []
        self.attached = []
        self.boundary = None
        self.default_versions = {}

    def client(self, name):
        if name not in self.clients:
            self.clients[name] = self.session.client(name, endpoint_url=self.endpoint, region_name=REGION)
        return self.clients[name]

    def role(self, role_arn, case):
        """Creates the role if missing and claims it for `case`; returns its name."""
        iam = self.client("iam")
        name = role_arn.rsplit("/", 1)[1]
        try:
            tags = {t["Key"]: t["Value"] for t in iam.get_role(RoleName=name)["Role"].get("Tags", [])}
        except ClientError as err:
            if error_code(err) != "NoSuchEntity":
                raise
            iam.create_role(
                RoleName=name,
                AssumeRolePolicyDocument=json.dumps(ECS_TASKS_TRUST),
                Tags=[{"Key": CASE_TAG, "Value": case}],
            )
            return name
        claimed = tags.get(CASE_TAG)
        if claimed not in (None, case):
            sys.exit(
                f"seed_iam.py: role {name} already holds case {claimed!r}; one case per moto server "
                "(POST /moto-api/reset, then seed.py and seed_iam.py again)"
            )
        if claimed is None:
            iam.tag_role(RoleName=name, Tags=[{"Key": CASE_TAG, "Value": case}])
        return name

    def put_inline(self, role, name, document):
        self.client("iam").put_role_policy(RoleName=role, PolicyName=name, PolicyDocument=document)
        self.inline.append(name)

    def managed(self, name, *versions):
        """Creates a customer managed policy whose versions are `versions` (the last one is the
        default); returns its ARN. An existing policy of that name is reused as it is."""
        iam = self.client("iam")
        arn = f"arn:aws:iam::{ACCOUNT}:policy/{name}"
        try:
            iam.create_policy(PolicyName=name, PolicyDocument=versions[0])
        except ClientError as err:
            if error_code(err) != "EntityAlreadyExists":
                raise
        else:
            for document in versions[1:]:
                iam.create_policy_version(PolicyArn=arn, PolicyDocument=document, SetAsDefault=True)
        self.default_versions[arn] = iam.get_policy(PolicyArn=arn)["Policy"]["DefaultVersionId"]
        return arn

    def attach(self, role, arn):
        self.client("iam").attach_role_policy(RoleName=role, PolicyArn=arn)
        self.attached.append(arn)

    def set_boundary(self, role, arn):
        self.client("iam").put_role_permissions_boundary(RoleName=role, PermissionsBoundary=arn)
        self.boundary = arn

    def parameter(self):
        """The SecureString the SSM cases name, encrypted with the AWS managed key (alias/aws/ssm)."""
        try:
            self.client("ssm").put_parameter(Name=PARAMETER_NAME, Value="not-a-real-password", Type="SecureString")
        except ClientError as err:
            if error_code(err) != "ParameterAlreadyExists":
                raise

    def bucket(self, bucket_policy=None):
        s3 = self.client("s3")
        try:
            s3.create_bucket(Bucket=BUCKET)
        except ClientError as err:
            if error_code(err) not in ("BucketAlreadyOwnedByYou", "BucketAlreadyExists"):
                raise
        if bucket_policy:
            s3.put_bucket_policy(Bucket=BUCKET, Policy=bucket_policy)


def ssm_case(s, case):
    """The cases of startup-ssm-denied: execution role, ssm:GetParameters on the parameter."""
    role = s.role(seed.EXECUTION_ROLE_ARN, case)
    s.parameter()
    read_prod = allow("ssm:GetParameters", PROD_PARAMETERS, sid="ReadProdParameters")
    if case == "old-version":
        logs_only = allow(["logs:CreateLogStream", "logs:PutLogEvents"], "*", sid="WriteLogs")
        s.attach(role, s.managed("app-secrets", policy(read_prod), policy(logs_only)))
        verdict = expect("confirmed", "implicit-deny", "identity")
    elif case == "boundary-cap":
        s.put_inline(role, "read-prod-parameters", policy(read_prod))
        arn = s.managed("ecs-execution-boundary", policy(allow(["ecr:*", "logs:*"], "*", sid="ImagesAndLogsOnly")))
        s.set_boundary(role, arn)
        verdict = expect("confirmed", "implicit-deny", "permissions-boundary", None, arn)
    elif case == "explicit-deny":
        s.attach(role, s.managed("ssm-read-all", policy(allow("ssm:*", "*", sid="ReadAllParameters"))))
        deny = {"Sid": "DenyProdParameters", "Effect": "Deny", "Action": "ssm:*", "Resource": PROD_PARAMETERS}
        s.put_inline(role, "deny-prod-parameters", policy(deny))
        verdict = expect("confirmed", "explicit-deny", "identity", "DenyProdParameters", "deny-prod-parameters")
    else:  # allowed
        s.put_inline(role, "read-prod-parameters", policy(read_prod))
        verdict = expect("contradicted", "allowed", None, "ReadProdParameters", "read-prod-parameters")
    return {
        "scenario": "startup-ssm-denied",
        "role_name": role,
        "role_arn": seed.EXECUTION_ROLE_ARN,
        "action": "ssm:GetParameters",
        "resource": PARAMETER_ARN,
        "expect": verdict,
        "parameter_name": PARAMETER_NAME,
    }


def cmk_case(s, case):
    """startup-secret-kms-denied: the key policy neither names the execution role nor delegates to IAM."""
    sm, kms = s.client("secretsmanager"), s.client("kms")
    try:
        secret = sm.describe_secret(SecretId=seed.SECRET_NAME)
    except ClientError as err:
        if error_code(err) != "ResourceNotFoundException":
            raise
        sys.exit(f"seed_iam.py: no secret {seed.SECRET_NAME}: run seed.py --scenario startup-secret-kms-denied first")
    key = kms.describe_key(KeyId=secret["KmsKeyId"])["KeyMetadata"]
    role = s.role(seed.EXECUTION_ROLE_ARN, case)
    iam = s.client("iam")
    try:
        iam.create_role(
            RoleName="key-admin",
            AssumeRolePolicyDocument=policy(
                {"Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:root"}, "Action": "sts:AssumeRole"}
            ),
        )
    except ClientError as err:
        if error_code(err) != "EntityAlreadyExists":
            raise
    # The console's "Allow access for Key Administrators" statement, alone: no root delegation, no key users.
    admin_actions = [
        "kms:Create*", "kms:Describe*", "kms:Enable*", "kms:List*", "kms:Put*", "kms:Update*",
        "kms:Revoke*", "kms:Disable*", "kms:Get*", "kms:Delete*", "kms:TagResource", "kms:UntagResource",
        "kms:ScheduleKeyDeletion", "kms:CancelKeyDeletion",
    ]  # fmt: skip
    key_policy = json.dumps(
        {
            "Version": "2012-10-17",
            "Id": "key-consolepolicy-3",
            "Statement": [
                {
                    "Sid": "Allow access for Key Administrators",
                    "Effect": "Allow",
                    "Principal": {"AWS": KEY_ADMIN_ARN},
                    "Action": admin_actions,
                    "Resource": "*",
                }
            ],
        }
    )
    # AWS refuses a policy that locks the caller out unless the safety check is bypassed (moto does not check).
    kms.put_key_policy(KeyId=key["KeyId"], PolicyName="default", Policy=key_policy, BypassPolicyLockoutSafetyCheck=True)
    s.put_inline(
        role,
        "app-db-credentials",
        policy(
            allow("secretsmanager:GetSecretValue", secret["ARN"], sid="ReadDbCredentials"),
            allow("kms:Decrypt", key["Arn"], sid="DecryptAppSecrets"),
        ),
    )
    return {
        "scenario": "startup-secret-kms-denied",
        "role_name": role,
        "role_arn": seed.EXECUTION_ROLE_ARN,
        "action": "kms:Decrypt",
        "resource": key["Arn"],
        "expect": expect("confirmed", "implicit-deny", "kms-key", None, key["Arn"]),
        "secret_arn": secret["ARN"],
        "kms_key_id": key["KeyId"],
        "kms_key_arn": key["Arn"],
    }


def s3_case(s, case):
    """runtime-s3-denied: task role, s3:PutObject on the report object."""
    role = s.role(seed.TASK_ROLE_ARN, case)
    s.put_inline(
        role, "report-uploads", policy(allow("s3:PutObject", f"arn:aws:s3:::{BUCKET}/reports/*", "WriteReports"))
    )
    if case == "bucket-deny":
        deny = {
            "Sid": "DenyWritesDuringMigration",
            "Effect": "Deny",
            "Principal": "*",
            "Action": ["s3:PutObject", "s3:DeleteObject"],
            "Resource": f"arn:aws:s3:::{BUCKET}/*",
        }
        s.bucket(policy(deny))
        verdict = expect(
            "confirmed", "explicit-deny", "resource", "DenyWritesDuringMigration", f"arn:aws:s3:::{BUCKET}"
        )
    else:
        s.bucket()
        verdict = expect("contradicted", "allowed", None, "WriteReports", "report-uploads")
    return {
        "scenario": "runtime-s3-denied",
        "role_name": role,
        "role_arn": seed.TASK_ROLE_ARN,
        "action": "s3:PutObject",
        "resource": OBJECT_ARN,
        "expect": verdict,
        "bucket": BUCKET,
    }


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--endpoint", required=True, help="moto server URL, e.g. http://127.0.0.1:5000")
    ap.add_argument("--case", required=True, choices=CASES)
    args = ap.parse_args()
    seed.check_endpoint(args.endpoint)

    s = Seeder(args.endpoint)
    if args.case == "cmk-no-delegation":
        out = cmk_case(s, args.case)
    elif args.case in ("task-role-allowed", "bucket-deny"):
        out = s3_case(s, args.case)
    else:
        out = ssm_case(s, args.case)
    out = {
        "case": args.case,
        **out,
        "inline_policies": s.inline,
        "attached_policies": s.attached,
        "permissions_boundary": s.boundary,
        "default_versions": s.default_versions,
    }
    json.dump(out, sys.stdout)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
